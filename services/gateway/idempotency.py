"""Replayed responses for `Idempotency-Key`: a retried POST gets the first answer again.

The key (scoped to the tenant) becomes the command id, so the pipeline applies the command
once whatever happens; this store only makes the *answer* repeatable, because a command the
session's writer has already processed publishes no second outcome to wait for. A final answer
(a decision, not `pending`) is kept with a fingerprint of the request; the same key with a
different request is refused (422 `idempotency_key_reused`). Kept in MongoDB so every replica
sees it; purged after `retention_s` by a periodic pass (no TTL indexes, as everywhere here).
"""

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.base import derive_id

log = logging.getLogger(__name__)

RESPONSES = "gateway_responses"

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    attempt: int = 0
    """Which command of the key answered (see `command_id_for`)."""
    final: bool = True
    """False for a claim (`ResponseStore.claim`): the key's request, its answer not yet kept."""


RETRY_LATER_CODES = frozenset({"queue_full", "turn_in_flight"})
"""Refusals that tell the client to send again once the running turn ended (docs/gateway.md):
kept, they would answer that retry for the whole retention instead."""


def retry_later(response: StoredResponse) -> bool:
    return response.body.get("code") in RETRY_LATER_CODES


UNKEPT_CODES = frozenset({"signature_invalid", "tenant_not_allowed"})
"""Refusals never kept: session-commands' publisher binding refused the gateway itself, decided
without the session and writing nothing (docs/security.md), so the command id is not spent.
Kept, they would answer every retry with 403 for the whole retention, long after the
deployment was fixed (a key rotated in the wrong order, a source not yet bound)."""


def command_id_for(tenant_id: str, idempotency_key: str, attempt: int = 0) -> str:
    """The command id of a keyed request: the same key of the same tenant, the same command.

    A command session-commands refused stays refused (it remembers the id), so once a
    `retry_later` refusal is the key's answer, the next request sends attempt + 1: a new
    command, as that refusal applied nothing."""
    if attempt == 0:
        return derive_id("http-command", tenant_id, idempotency_key)
    return derive_id("http-command", tenant_id, idempotency_key, str(attempt))


def fingerprint(method: str, path: str, body: object) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseStore:
    def __init__(self, database: AsyncDatabase[Document], retention_s: int) -> None:
        self._responses = database[RESPONSES]
        self._retention = timedelta(seconds=retention_s)
        self._forgetting: set[asyncio.Task[int]] = set()
        self._indexed = False

    async def find(self, command_id: str) -> StoredResponse | None:
        document = await self._responses.find_one({"_id": command_id})
        if document is None:
            return None
        if document.get("claim"):
            return StoredResponse(document["fingerprint"], 0, {}, {}, final=False)
        return StoredResponse(
            fingerprint=document["fingerprint"],
            status=int(document["status"]),
            body=json.loads(document["body"]),
            headers=dict(document.get("headers", {})),
            attempt=int(document.get("attempt", 0)),
        )

    async def claim(
        self, command_id: str, fingerprint: str, *, session_id: str | None = None
    ) -> StoredResponse | None:
        """Reserve the key for this request before its command is published: None when this
        call reserved it, else what the key already holds. Without it, two concurrent
        requests with one key and different bodies both found nothing, both published the
        same command id (the pipeline applied one of them) and both were answered 2xx, one
        of them with the other's outcome; now the later one sees the claim's fingerprint."""
        document = {
            "_id": command_id,
            "claim": True,
            "fingerprint": fingerprint,
            "created_at": datetime.now(UTC),
            "session_id": session_id,  # for `forget_session`
        }
        try:
            await self._responses.insert_one(document)
        except DuplicateKeyError:
            return await self.find(command_id)
        return None

    async def keep(
        self,
        command_id: str,
        response: StoredResponse,
        *,
        replacing: StoredResponse | None = None,
        session_id: str | None = None,
    ) -> None:
        """First answer wins: a concurrent duplicate keeps the one stored before it (a claim
        is no answer: the first answer replaces it). With
        `replacing` (a `retry_later` refusal a later attempt answered), only while that one
        is still kept: of concurrent retries, the first answer of the attempt wins."""
        document = {
            "_id": command_id,
            "fingerprint": response.fingerprint,
            "status": response.status,
            "body": json.dumps(response.body),
            "headers": response.headers,
            "attempt": response.attempt,
            "created_at": datetime.now(UTC),
            "session_id": session_id,  # for `forget_session`
        }
        if replacing is not None:
            # A document kept before attempts were recorded has none: it was attempt 0.
            kept = [replacing.attempt, None] if replacing.attempt == 0 else [replacing.attempt]
            await self._responses.replace_one(
                {"_id": command_id, "attempt": {"$in": kept}}, document
            )
            return
        with contextlib.suppress(DuplicateKeyError):
            # Over the key's claim, or a new document (the claim was purged); an answer kept
            # already leaves the filter unmatched, and the upsert's insert fails on its id.
            await self._responses.replace_one(
                {"_id": command_id, "claim": True}, document, upsert=True
            )

    async def ensure_indexes(self) -> None:
        """Idempotent. The purge deletes by `created_at`, an erasure by `session_id`: without
        them each scanned a day of kept answers. Run by the first purge (at start-up, then
        hourly until it succeeds), not before serving: the gateway answers while MongoDB is
        down, with 503 where it needs it."""
        await self._responses.create_index([("created_at", ASCENDING)], name="created_at")
        await self._responses.create_index([("session_id", ASCENDING)], name="session_id")

    async def forget_session(self, session_id: str) -> int:
        """Delete the answers kept for a session's requests: on its erasure, since an answer
        holds its content (a title, a system prompt, the assistant's message), which a replay
        would hand back and MongoDB would keep for the retention."""
        result = await self._responses.delete_many({"session_id": session_id})
        return result.deleted_count

    def forget_session_soon(self, session_id: str) -> None:
        """`forget_session` in a task of its own (from the event feed's loop, which must not
        wait on MongoDB); a failure is logged, and the retention purge deletes them anyway."""
        task = asyncio.get_running_loop().create_task(self.forget_session(session_id))
        self._forgetting.add(task)
        task.add_done_callback(partial(self._forgotten, session_id))

    def _forgotten(self, session_id: str, task: "asyncio.Task[int]") -> None:
        self._forgetting.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning(
                "kept answers of erased session %s not deleted: %s: %s",
                session_id,
                type(error).__name__,
                error,
            )

    async def purge(self) -> int:
        if not self._indexed:
            await self.ensure_indexes()
            self._indexed = True
        cutoff = datetime.now(UTC) - self._retention
        result = await self._responses.delete_many({"created_at": {"$lt": cutoff}})
        return result.deleted_count
