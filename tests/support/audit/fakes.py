"""In-memory stand-ins for the audit log and the audit topic, and record building."""

from dataclasses import replace

from contracts.audit import AuditRecord
from contracts.codec import EncodedRecord, decode
from contracts.topics import TopicCatalogue, TopicName
from services.audit.records import AuditEntry, StoredEntry
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from tests.support.audit.conversation import Fact, RawFact

CATALOGUE = TopicCatalogue(prefix="unit.")


class FakeLog:
    def __init__(self) -> None:
        self.entries: dict[str, StoredEntry] = {}

    async def record(self, entry: AuditEntry) -> StoredEntry:
        return self.entries.setdefault(entry.record.id, StoredEntry(entry, published=False))

    def note_published(self, record_id: str) -> None:
        self.entries[record_id] = replace(self.entries[record_id], published=True)

    async def mark_published(self, record_id: str) -> None:
        self.note_published(record_id)


class FakeSink:
    def __init__(self, failures: int = 0) -> None:
        self.published: list[EncodedRecord] = []
        self._failures = failures

    async def publish(self, record: EncodedRecord) -> None:
        if self._failures:
            self._failures -= 1
            raise RetryableError("broker unavailable")
        self.published.append(record)

    def records(self) -> list[AuditRecord]:
        result = []
        for item in self.published:
            message = decode(item.value, item.headers, topic=TopicName.AUDIT).message
            assert isinstance(message, AuditRecord)
            result.append(message)
        return result


def kafka_record(fact: Fact | RawFact, offset: int, partition: int = 0) -> Record:
    if isinstance(fact, Fact):
        encoded = fact.encoded()
        key, value, headers = encoded.key, encoded.value, tuple(encoded.headers)
    else:
        key, value, headers = fact.key, fact.value, fact.headers
    return Record(
        topic=CATALOGUE.name(fact.topic),
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp_ms=1_767_600_000_000,
    )
