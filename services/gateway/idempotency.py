"""Replayed responses for `Idempotency-Key`: a retried POST gets the first answer again.

The key (scoped to the tenant) becomes the command id, so the pipeline applies the command
once whatever happens; this store only makes the *answer* repeatable, because a command the
session's writer has already processed publishes no second outcome to wait for. A final answer
(a decision, not `pending`) is kept with a fingerprint of the request; the same key with a
different request is refused (422 `idempotency_key_reused`). Kept in MongoDB so every replica
sees it; purged after `retention_s` by a periodic pass (no TTL indexes, as everywhere here).
"""

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.base import derive_id

RESPONSES = "gateway_responses"

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def command_id_for(tenant_id: str, idempotency_key: str) -> str:
    """The command id of a keyed request: the same key of the same tenant, the same command."""
    return derive_id("http-command", tenant_id, idempotency_key)


def fingerprint(method: str, path: str, body: object) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseStore:
    def __init__(self, database: AsyncDatabase[Document], retention_s: int) -> None:
        self._responses = database[RESPONSES]
        self._retention = timedelta(seconds=retention_s)

    async def find(self, command_id: str) -> StoredResponse | None:
        document = await self._responses.find_one({"_id": command_id})
        if document is None:
            return None
        return StoredResponse(
            fingerprint=document["fingerprint"],
            status=int(document["status"]),
            body=json.loads(document["body"]),
            headers=dict(document.get("headers", {})),
        )

    async def keep(self, command_id: str, response: StoredResponse) -> None:
        """First answer wins: a concurrent duplicate keeps the one stored before it."""
        with contextlib.suppress(DuplicateKeyError):
            await self._responses.insert_one(
                {
                    "_id": command_id,
                    "fingerprint": response.fingerprint,
                    "status": response.status,
                    "body": json.dumps(response.body),
                    "headers": response.headers,
                    "created_at": datetime.now(UTC),
                }
            )

    async def purge(self) -> int:
        cutoff = datetime.now(UTC) - self._retention
        result = await self._responses.delete_many({"created_at": {"$lt": cutoff}})
        return result.deleted_count
