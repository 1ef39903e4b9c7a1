"""The Mongo audit log against the real Mongo-compatible server: idempotent insert, queries,
paging, retention."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.audit import AuditOutcome, AuditRecord
from services.audit.audit_log import AuditQuery, InvalidCursor, MongoAuditLog
from services.audit.records import StoredEntry
from tests.support.audit.entries import T0, entry
from tests.support.audit.log_contract import AuditLogContract

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_log(mongodb_uri: str, mongo_database_name: str) -> AsyncIterator[MongoAuditLog]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        log = MongoAuditLog(client[mongo_database_name])
        await log.ensure_indexes()
        await log.ensure_indexes()  # idempotent at every start-up
        yield log
    finally:
        await client.close()


class TestMongoAuditLog(AuditLogContract):
    """The contract the in-memory fake is held to, against the real audit log."""

    @pytest.fixture
    def log(self, audit_log: MongoAuditLog) -> MongoAuditLog:
        return audit_log


async def test_the_first_record_under_an_id_wins(audit_log: MongoAuditLog) -> None:
    first = entry("e-1", recorded_at=T0)
    stored = await audit_log.record(first)
    assert stored.entry == first
    assert not stored.published

    again = entry("e-1", recorded_at=T0 + timedelta(hours=1), content="changed")
    stored_again = await audit_log.record(again)
    assert stored_again.entry == first  # same bytes as before, not the new attempt
    assert await audit_log.count() == 1

    await audit_log.mark_published(first.record.id)
    after = await audit_log.record(again)
    assert after.published
    assert after.entry.record == first.record


async def test_queries_filter_by_session_tenant_type_and_record_time(
    audit_log: MongoAuditLog,
) -> None:
    entries = [
        entry("a", session="s-1", tenant="acme", recorded_at=T0),
        entry("b", session="s-2", tenant="acme", recorded_at=T0 + timedelta(minutes=1)),
        entry(
            "c",
            session="s-1",
            tenant="acme",
            fact_type="turn.failed.v1",
            recorded_at=T0 + timedelta(minutes=2),
        ),
        entry("d", session="s-3", tenant="globex", recorded_at=T0 + timedelta(minutes=3)),
    ]
    for item in reversed(entries):  # insertion order must not matter: sorted by record time
        await audit_log.record(item)

    async def ids(**filters: Any) -> list[str]:
        page = await audit_log.query(AuditQuery(**filters))
        return [r.fact_id for r in page.records]

    assert await ids(session_id="s-1") == ["a", "c"]
    assert await ids(tenant_id="acme") == ["a", "b", "c"]
    assert await ids(tenant_id="globex") == ["d"]
    assert await ids(fact_type="turn.failed.v1") == ["c"]
    assert await ids(tenant_id="acme", fact_type="session.created.v1") == ["a", "b"]
    assert await ids(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == [
        "b",
        "c",
    ]
    assert await ids(outcome=AuditOutcome.REJECTED) == []
    assert await ids() == ["a", "b", "c", "d"]


async def test_pages_follow_each_other_without_gaps_or_repeats(audit_log: MongoAuditLog) -> None:
    for i in range(25):
        await audit_log.record(entry(f"e-{i:02}", recorded_at=T0 + timedelta(seconds=i // 2)))
    seen: list[AuditRecord] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await audit_log.query(AuditQuery(session_id="s-1", limit=10, after=cursor))
        seen.extend(page.records)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    # Pairs share a record time (ties are broken by record id): none lost, none repeated.
    assert sorted(r.fact_id for r in seen) == [f"e-{i:02}" for i in range(25)]
    assert [r.occurred_at for r in seen] == sorted(r.occurred_at for r in seen)
    # Garbage, a number past int64 (BSON refused the query: a CLI traceback), non-ASCII digits.
    for garbage in ("garbage", f"{2**63}:audit-x", "99999999999999999999999:x", "\u0663:x"):
        with pytest.raises(InvalidCursor):
            await audit_log.query(AuditQuery(after=garbage))


async def test_retention_deletes_only_what_was_recorded_before_the_cutoff(
    audit_log: MongoAuditLog,
) -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    await audit_log.record(entry("old", recorded_at=now - timedelta(days=31)))
    await audit_log.record(entry("edge", recorded_at=now - timedelta(days=30)))
    await audit_log.record(entry("new", recorded_at=now - timedelta(days=1)))
    assert await audit_log.purge_recorded_before(now - timedelta(days=30)) == 1
    remaining = await audit_log.query(AuditQuery())
    assert [r.fact_id for r in remaining.records] == ["edge", "new"]
    assert await audit_log.purge_recorded_before(now - timedelta(days=30)) == 0


async def test_concurrent_records_share_one_insert_and_duplicates_read_back(
    audit_log: MongoAuditLog,
) -> None:
    first = entry("g-0", recorded_at=T0)
    await audit_log.record(first)
    await audit_log.mark_published(first.record.id)
    later = T0 + timedelta(hours=1)
    batch = [entry(f"g-{i}", recorded_at=later) for i in range(5)]
    stored = await asyncio.gather(*(audit_log.record(item) for item in batch))
    # g-0 existed: its first record comes back, published; the others are new.
    assert stored[0].entry == first
    assert stored[0].published
    assert [s.entry for s in stored[1:]] == batch[1:]
    assert not any(s.published for s in stored[1:])
    await asyncio.gather(*(audit_log.mark_published(item.record.id) for item in batch[1:]))
    again = await asyncio.gather(*(audit_log.record(item) for item in batch))
    assert all(s.published for s in again)
    assert await audit_log.count() == 5


async def test_a_record_mongo_cannot_store_fails_alone_not_its_whole_batch(
    audit_log: MongoAuditLog,
) -> None:
    # Handlers of other sessions share the insert (group commit): one document BSON cannot
    # encode must not fail their records too (they would all be dead-lettered).
    good = [entry(f"ok-{i}") for i in range(5)]
    sound = entry("unstorable")
    record = sound.record.model_copy(update={"detail": {"attempts": 10**20}})
    unstorable = replace(sound, record=record)
    results = await asyncio.gather(
        *(audit_log.record(item) for item in [*good[:2], unstorable, *good[2:]]),
        return_exceptions=True,
    )
    assert isinstance(results[2], ValueError)
    stored = [r for i, r in enumerate(results) if i != 2]
    assert [s.entry for s in stored if isinstance(s, StoredEntry)] == good
    assert await audit_log.count() == 5
