"""What every audit log must do for the handler, as tests: subclassed once per implementation.

`TestFakeLog` (tests/unit) runs it against the fake the handler tests use, `TestMongoAuditLog`
(tests/integration) against `MongoAuditLog` on the Mongo-compatible server (eventsourcing's
`ProcessRecorderTestCase` pattern). A subclass provides the `log` fixture.
"""

from datetime import timedelta
from typing import Protocol

from services.audit.handler import EntryStore
from services.audit.records import StoredEntry
from tests.support.audit.entries import T0, entry


class ContractLog(EntryStore, Protocol):
    async def mark_published(self, record_id: str) -> None:
        """`note_published` and wait until the mark is written."""


class AuditLogContract:
    async def test_a_new_entry_is_stored_unpublished(self, log: ContractLog) -> None:
        first = entry("contract-1")

        assert await log.record(first) == StoredEntry(first, published=False)

    async def test_the_first_entry_under_a_record_id_wins(self, log: ContractLog) -> None:
        first = entry("contract-2", recorded_at=T0)
        await log.record(first)

        again = await log.record(
            entry("contract-2", recorded_at=T0 + timedelta(hours=1), content="changed")
        )

        assert again == StoredEntry(first, published=False)

    async def test_a_published_entry_is_recorded_again_as_published(self, log: ContractLog) -> None:
        first = entry("contract-3")
        await log.record(first)

        await log.mark_published(first.record.id)

        assert await log.record(entry("contract-3")) == StoredEntry(first, published=True)

    async def test_marking_one_entry_published_leaves_the_others(self, log: ContractLog) -> None:
        one, other = entry("contract-4"), entry("contract-5")
        await log.record(one)
        await log.record(other)

        await log.mark_published(one.record.id)

        assert await log.record(other) == StoredEntry(other, published=False)
