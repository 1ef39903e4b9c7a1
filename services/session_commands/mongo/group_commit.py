"""Group commit: the writes of many sessions' handlers go to MongoDB in a few bulk requests.

The key-ordered consumer runs hundreds of sessions concurrently; each needs its message
inserts and one compare-and-set of its session document. Sent one by one, the per-request
cost of the server dominates (about 1 ms each on the local stand-in); sent as one `insertMany`
plus one unordered `bulkWrite` per batch, it is paid once per batch. A handler still awaits
its own write and learns its own outcome (written, or a version conflict), so the crash-safety
sequence in handler.py is unchanged: nothing is acknowledged before its batch is durable.

Order inside a batch: all message documents first, then the session documents, so a session
write never lands before its messages. One session has at most one write in a batch: its
handler awaits each write before the next.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from services.runtime.errors import RetryableError
from services.session_commands.mongo.session_document import Document

_DUPLICATE_KEY = 11000
SessionOp = InsertOne[Document] | ReplaceOne[Document] | UpdateOne


class ConcurrentWriteError(RetryableError):
    """The session document changed since it was loaded: another writer (a zombie owner after a
    rebalance) got there first. Retry: reload, and the processed-id check sorts it out."""


@dataclass(slots=True)
class _Write:
    session_id: str
    messages: Sequence[Document]
    op: SessionOp
    # For a create or a compare-and-set: how to recognise our own write when reading back.
    expect_version: int | None
    command_id: str | None
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    def __init__(
        self,
        sessions: AsyncCollection[Document],
        messages: AsyncCollection[Document],
        *,
        max_batch: int = 500,
    ) -> None:
        self._sessions = sessions
        self._messages = messages
        self._max_batch = max_batch
        self._pending: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None

    async def create(
        self, document: Document, messages: Sequence[Document], command_id: str
    ) -> None:
        await self._submit(
            _Write(document["_id"], messages, InsertOne(document), document["version"], command_id)
        )

    async def compare_and_set(
        self,
        document: Document,
        messages: Sequence[Document],
        previous_version: int,
        command_id: str,
    ) -> None:
        op = ReplaceOne({"_id": document["_id"], "version": previous_version}, document)
        await self._submit(_Write(document["_id"], messages, op, document["version"], command_id))

    async def clear_outbox(self, session_id: str, published: Sequence[Document]) -> None:
        """Removes exactly the published entries: if another writer moved on, its outbox stays
        (an entry equal to one of ours is the same record, published). Filtered on `_id`
        alone, which mongo-java-server serves from the index; `{_id, version}` scans there."""
        op = UpdateOne({"_id": session_id}, {"$pullAll": {"outbox": list(published)}})
        await self._submit(_Write(session_id, (), op, None, None))

    async def _submit(self, write: _Write) -> None:
        self._pending.append(write)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="session-group-commit")
        await asyncio.shield(write.done)

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = (
                self._pending[: self._max_batch],
                self._pending[self._max_batch :],
            )
            try:
                await self._flush(batch)
            except Exception as exc:  # every waiter of the batch gets the failure
                for write in batch:
                    if not write.done.done():
                        write.done.set_exception(exc)

    async def _flush(self, batch: list[_Write]) -> None:
        await self._insert_messages([m for write in batch for m in write.messages])
        failed = await self._write_sessions(batch)
        for index, write in enumerate(batch):
            if index in failed:
                write.done.set_exception(
                    ConcurrentWriteError(f"session {write.session_id} was written meanwhile")
                )
            else:
                write.done.set_result(None)

    async def _insert_messages(self, documents: list[Document]) -> None:
        # A document already there comes from a redelivery (or a crash after this step).
        if not documents:
            return
        try:
            await self._messages.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != _DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    async def _write_sessions(self, batch: list[_Write]) -> set[int]:
        """Indexes of the creates / compare-and-sets that did not apply."""
        guarded = {i for i, write in enumerate(batch) if write.expect_version is not None}
        try:
            result = await self._sessions.bulk_write([w.op for w in batch], ordered=False)
            applied = result.matched_count + result.inserted_count
        except BulkWriteError as exc:
            errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
            if any(e.get("code") != _DUPLICATE_KEY for e in errors):
                raise
            return {int(e["index"]) for e in errors} | await self._read_back(batch, guarded)
        if applied >= len(batch):
            return set()
        # Some filter matched nothing, and the total does not say which: look.
        return await self._read_back(batch, guarded)

    async def _read_back(self, batch: list[_Write], guarded: set[int]) -> set[int]:
        """A guarded write applied iff the document now carries its version and its command id
        last. (A zombie that applied the same command from the same version wrote the same
        decision, so that counts as applied too.)"""
        ids = [batch[i].session_id for i in guarded]
        cursor = self._sessions.find(
            {"_id": {"$in": ids}}, {"version": 1, "processed_command_ids": 1}
        )
        found = {d["_id"]: d for d in await cursor.to_list(None)}
        failed = set()
        for i in guarded:
            write = batch[i]
            document = found.get(write.session_id)
            last = (document or {}).get("processed_command_ids") or [None]
            if (
                document is None
                or document["version"] != write.expect_version
                or last[-1] != write.command_id
            ):
                failed.add(i)
        return failed
