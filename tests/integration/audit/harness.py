"""Running the audit service in-process against the real broker and reading what it wrote."""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from contracts.audit import AuditRecord, RedactionMode
from contracts.codec import decode
from contracts.topics import TopicCatalogue, TopicName
from services.audit.app import AuditService, build
from services.audit.audit_log import MongoAuditLog
from services.audit.handler import AUDITED_TOPICS
from services.audit.settings import AuditSettings
from tests.integration import service_harness
from tests.integration.service_harness import Publisher, wait_caught_up
from tests.support.audit.conversation import Fact, RawFact

PARTITIONS = 3
WITHIN_S = 90.0


@dataclass(frozen=True, slots=True)
class Deployment:
    bootstrap: str
    mongodb_uri: str
    database: str
    catalogue: TopicCatalogue

    def topic(self, name: TopicName) -> str:
        return self.catalogue.name(name)

    @asynccontextmanager
    async def audit_log(self) -> AsyncIterator[MongoAuditLog]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_uri)
        try:
            yield MongoAuditLog(client[self.database])
        finally:
            await client.close()

    def settings(self, group: str, mode: RedactionMode = RedactionMode.HASHED) -> AuditSettings:
        return AuditSettings(
            **service_harness.runtime_settings(self.bootstrap, self.catalogue.prefix),
            mongodb_uri=self.mongodb_uri,
            mongodb_database=self.database,
            audit_consumer_group=group,
            redaction_mode=mode,
            redaction_truncate_chars=12,
            log_level="WARNING",
        )


@asynccontextmanager
async def deployment(
    bootstrap: str, mongodb_uri: str, database: str, suffix: str
) -> AsyncIterator[Deployment]:
    """The whole topic catalogue under a prefix of this test alone, deleted afterwards."""
    catalogue = TopicCatalogue(prefix=f"t-{suffix}.", partitions=PARTITIONS)
    async with service_harness.provisioned_topics(bootstrap, catalogue):
        yield Deployment(bootstrap, mongodb_uri, database, catalogue)


def running(settings: AuditSettings) -> AbstractAsyncContextManager[AuditService]:
    return service_harness.started(build(settings, configure_logs=False))


@dataclass(frozen=True, slots=True)
class Published:
    fact: Fact | RawFact
    partition: int
    offset: int


async def publish(
    bootstrap: str, catalogue: TopicCatalogue, facts: Sequence[Fact | RawFact]
) -> list[Published]:
    """Publish in order, each acknowledged before the next (source order = list order)."""
    result = []
    async with Publisher(bootstrap) as publisher:
        for fact in facts:
            if isinstance(fact, Fact):
                encoded = fact.encoded()
                key, value, headers = encoded.key, encoded.value, encoded.headers
            else:
                key, value, headers = fact.key, fact.value, list(fact.headers)
            meta = await publisher.send_raw(catalogue.name(fact.topic), key, value, headers)
            result.append(Published(fact, meta.partition, meta.offset))
    return result


@dataclass(frozen=True, slots=True)
class AuditEvent:
    partition: int
    offset: int
    record: AuditRecord
    raw: bytes


async def read_topic(
    bootstrap: str, topic: str
) -> list[tuple[int, int, bytes, list[tuple[str, bytes]]]]:
    """Everything on `topic` now: (partition, offset, value, headers) in partition/offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        rows: list[tuple[int, int, bytes, list[tuple[str, bytes]]]] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batches.items():
                for m in messages:
                    rows.append((tp.partition, m.offset, m.value, list(m.headers)))
                    if m.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return sorted(rows, key=lambda row: (row[0], row[1]))
    finally:
        await consumer.stop()


async def audit_events(deployment: Deployment) -> list[AuditEvent]:
    events = []
    for partition, offset, value, headers in await read_topic(
        deployment.bootstrap, deployment.topic(TopicName.AUDIT)
    ):
        record = decode(value, headers, topic=TopicName.AUDIT).message
        assert isinstance(record, AuditRecord)
        events.append(AuditEvent(partition, offset, record, value))
    return events


async def caught_up(deployment: Deployment, group: str, within: float = WITHIN_S) -> None:
    """Wait until `group` committed every source record, dead letters produced meanwhile too."""
    topics = [deployment.topic(t) for t in AUDITED_TOPICS]
    await wait_caught_up(deployment.bootstrap, group, topics, PARTITIONS, within)


async def stored_documents(deployment: Deployment) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(deployment.mongodb_uri)
    try:
        return await client[deployment.database]["audit_log"].find({}).to_list(None)
    finally:
        await client.close()
