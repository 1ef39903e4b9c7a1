"""The retained audit log in MongoDB (`audit_log`): idempotent by record id, queryable, expired
by an application job (no TTL indexes: the Mongo-compatible test server lacks them).

One document per record id (`_id`), holding the record exactly as published plus flat
fields to filter and sort on. The first record made under an id wins: a replayed fact finds
its record here and is re-published from it unchanged (immutable records), or not at all once
`published` is set.

Writes are group-committed (services/runtime/write_batch.py): the records of all handlers
running at once go in one unordered `insertMany`, the ids that already exist are read back in
one `find` (only when the insert reported duplicate keys), and "published" marks go in one
`updateMany`, written behind (published_marks.py: no handler waits for its mark). At most one
insert and one mark request are in flight per process.
"""

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import bson
from bson.errors import InvalidDocument
from pydantic import AfterValidator, Field
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from contracts.audit import AuditOutcome, AuditRecord
from contracts.base import INT64_MAX
from services.audit.published_marks import PublishedMarks
from services.audit.records import AuditEntry, StoredEntry
from services.runtime.errors import RetryableError
from services.runtime.mongo_errors import database_outage
from services.runtime.write_batch import WriteBatch

COLLECTION: Final = "audit_log"


def _not_a_system_collection(name: str) -> str:
    if name.startswith("system."):
        raise ValueError("system.* collections are MongoDB's own")
    return name


AuditLogCollection = Annotated[
    str,
    # A name MongoDB takes (no `$`, no leading/trailing or double dot; `system.` is the
    # server's): checked here, it is a setting error at start (exit 2) naming the variable,
    # not pymongo's InvalidName traceback or a write refused on every record. The CLI's
    # `audit query` reads the same setting (this module is its published read contract).
    Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"),
    AfterValidator(_not_a_system_collection),
]
MAX_PAGE: Final = 1_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DUPLICATE_KEY: Final = 11000
_UNSTORABLE: Final = (InvalidDocument, OverflowError)
"""What pymongo raises, before sending anything, for a document BSON cannot encode."""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters are ANDed; the time range is on record time (the audit service's clock)."""

    session_id: str | None = None
    tenant_id: str | None = None
    fact_type: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    after: str | None = None  # the previous page's next_cursor


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next_cursor: str | None


class InvalidCursor(ValueError):
    pass


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


class MongoAuditLog:
    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        collection: str = COLLECTION,
        *,
        max_batch: int = 500,
        mark_linger_s: float = 0.25,
    ):
        self._log: AsyncCollection[dict[str, Any]] = database[collection]
        self._inserts = WriteBatch(self._insert_batch, max_batch=max_batch, name="audit-insert")
        self._marks = PublishedMarks(self._mark_batch, linger_s=mark_linger_s)

    async def ensure_indexes(self) -> None:
        """Idempotent; run at start-up. `_id` (the record id) is the uniqueness guard."""
        async with _retryable():
            for fields in (
                ("session_id", "recorded_us"),
                ("tenant_id", "recorded_us"),
                ("fact_type", "recorded_us"),
                ("recorded_us",),
            ):
                await self._log.create_index(
                    [(name, ASCENDING) for name in fields], name="_".join(fields)
                )

    async def record(self, entry: AuditEntry) -> StoredEntry:
        """Insert unless the id exists; either way return what is stored under the id."""
        return await self._inserts.submit(entry)

    def note_published(self, record_id: str) -> None:
        """Mark the record published, written behind: see published_marks.py."""
        self._marks.note(record_id)

    async def flush_published(self) -> None:
        """Write the marks noted so far (on shutdown, after the drain)."""
        await self._marks.flush()

    async def mark_published(self, record_id: str) -> None:
        self.note_published(record_id)
        await self.flush_published()

    async def _insert_batch(self, entries: list[AuditEntry]) -> list[StoredEntry | Exception]:
        documents = [_document(entry) for entry in entries]
        failed: dict[int, Exception] = {}
        duplicates: set[int] = set()
        async with _retryable():
            try:
                await self._insert(documents, range(len(documents)), duplicates, failed)
            except _UNSTORABLE:
                # The driver refuses the whole batch for one document BSON cannot hold: that
                # one fails alone, not the records of the other sessions handled meanwhile.
                failed |= _unstorable(documents)
                rest = [i for i in range(len(documents)) if i not in failed]
                if rest:
                    await self._insert(documents, rest, duplicates, failed)
            existing: dict[str, dict[str, Any]] = {}
            if duplicates:
                # Only on replays and races (e.g. old and new owner during a rebalance).
                ids = [documents[i]["_id"] for i in duplicates]
                cursor = self._log.find({"_id": {"$in": ids}})
                existing = {d["_id"]: d for d in await cursor.to_list(None)}
        results: list[StoredEntry | Exception] = []
        for index, entry in enumerate(entries):
            before = existing.get(entry.record.id) if index in duplicates else None
            if index in failed:
                results.append(failed[index])
            elif before is not None:
                results.append(_stored(before))
            else:  # inserted now (or purged by retention in between: then it is new again)
                results.append(StoredEntry(entry=entry, published=False))
        return results

    async def _insert(
        self,
        documents: list[dict[str, Any]],
        indexes: Sequence[int],
        duplicates: set[int],
        failed: dict[int, Exception],
    ) -> None:
        """Insert `documents[i]` for i in `indexes`; note duplicates and refusals by i."""
        try:
            await self._log.insert_many([documents[i] for i in indexes], ordered=False)
        except BulkWriteError as exc:
            errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
            if not errors:  # only a write concern error: nothing known to be durable
                raise RetryableError(f"audit log write not acknowledged: {exc}") from exc
            for error in errors:
                index = indexes[int(error["index"])]
                if error.get("code") == _DUPLICATE_KEY:
                    duplicates.add(index)
                else:
                    failed[index] = ValueError(f"audit log refused the record: {error}")

    async def _mark_batch(self, record_ids: list[str]) -> None:
        async with _retryable():
            await self._log.update_many(
                {"_id": {"$in": list(set(record_ids))}}, {"$set": {"published": True}}
            )

    async def query(self, query: AuditQuery) -> AuditPage:
        limit = max(1, min(query.limit, MAX_PAGE))
        async with _retryable():
            cursor = self._log.find(_filter(query)).sort(
                [("recorded_us", ASCENDING), ("_id", ASCENDING)]
            )
            documents = await cursor.limit(limit + 1).to_list(None)
        records = [_stored(d).entry.record for d in documents[:limit]]
        next_cursor = None
        if len(documents) > limit:
            last = documents[limit - 1]
            next_cursor = f"{last['recorded_us']}:{last['_id']}"
        return AuditPage(records=records, next_cursor=next_cursor)

    async def purge_recorded_before(self, cutoff: datetime) -> int:
        """The retention job's one statement: drop records older than `cutoff`."""
        async with _retryable():
            result = await self._log.delete_many({"recorded_us": {"$lt": micros(cutoff)}})
        return result.deleted_count

    async def count(self) -> int:
        async with _retryable():
            return await self._log.count_documents({})


def _document(entry: AuditEntry) -> dict[str, Any]:
    record = entry.record
    return {
        "_id": record.id,
        "record": record.model_dump(mode="json"),
        "correlation_id": entry.correlation_id,
        "traceparent": entry.traceparent,
        "session_id": record.session_id,
        "tenant_id": record.tenant_id,
        "fact_type": record.fact_type,
        "outcome": record.outcome.value,
        "recorded_at": record.occurred_at,
        "recorded_us": micros(record.occurred_at),
        "fact_time": record.fact_time,
        "published": False,
    }


def _unstorable(documents: list[dict[str, Any]]) -> dict[int, Exception]:
    failed: dict[int, Exception] = {}
    for index, document in enumerate(documents):
        try:
            bson.encode(document)
        except _UNSTORABLE as exc:
            failed[index] = ValueError(f"audit log cannot store the record: {exc}")
    return failed


def _stored(document: Mapping[str, Any]) -> StoredEntry:
    entry = AuditEntry(
        record=AuditRecord.model_validate(document["record"]),
        correlation_id=document.get("correlation_id"),
        traceparent=document.get("traceparent"),
    )
    return StoredEntry(entry=entry, published=bool(document.get("published")))


def _filter(query: AuditQuery) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    for name in ("session_id", "tenant_id", "fact_type"):
        value = getattr(query, name)
        if value is not None:
            clauses.append({name: value})
    if query.outcome is not None:
        clauses.append({"outcome": query.outcome.value})
    if query.since is not None:
        clauses.append({"recorded_us": {"$gte": micros(query.since)}})
    if query.until is not None:
        clauses.append({"recorded_us": {"$lt": micros(query.until)}})
    if query.after is not None:
        after_us, after_id = _parse_cursor(query.after)
        clauses.append(
            {
                "$or": [
                    {"recorded_us": {"$gt": after_us}},
                    {"recorded_us": after_us, "_id": {"$gt": after_id}},
                ]
            }
        )
    return {"$and": clauses} if clauses else {}


def _parse_cursor(cursor: str) -> tuple[int, str]:
    us, sep, record_id = cursor.partition(":")
    # ASCII digits that fit the stored int64: a longer number made the query itself fail
    # (BSON holds 8-byte ints), a traceback where a usage error is due.
    if not sep or not (us.isascii() and us.isdigit()) or not record_id or int(us) > INT64_MAX:
        raise InvalidCursor(f"not a cursor from a previous page: {cursor!r}")
    return int(us), record_id


def _retryable() -> AbstractAsyncContextManager[None]:
    """Outages are transient: the runtime retries this key with backoff."""
    return database_outage("audit log")
