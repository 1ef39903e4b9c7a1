"""Running the audit service in-process against the real broker and reading what it wrote."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from contracts.audit import AuditRecord, RedactionMode
from contracts.codec import decode
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.audit.app import AuditService, build
from services.audit.audit_log import MongoAuditLog
from services.audit.handler import AUDITED_TOPICS
from services.audit.settings import AuditSettings
from tests.unit.audit.conversation import Fact, RawFact

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
            kafka_bootstrap_servers=self.bootstrap,
            mongodb_uri=self.mongodb_uri,
            mongodb_database=self.database,
            topic_prefix=self.catalogue.prefix,
            audit_consumer_group=group,
            redaction_mode=mode,
            redaction_truncate_chars=12,
            commit_interval_s=0.2,
            health_port=0,
            log_format="console",
            log_level="WARNING",
        )


@asynccontextmanager
async def deployment(
    bootstrap: str, mongodb_uri: str, database: str, suffix: str
) -> AsyncIterator[Deployment]:
    """The whole topic catalogue under a prefix of this test alone, deleted afterwards."""
    catalogue = TopicCatalogue(prefix=f"t-{suffix}.", partitions=PARTITIONS)
    await ensure_topics(bootstrap, catalogue.specs())
    try:
        yield Deployment(bootstrap, mongodb_uri, database, catalogue)
    finally:
        await delete_topics(bootstrap, [spec.name for spec in catalogue.specs()])


@asynccontextmanager
async def running(settings: AuditSettings) -> AsyncIterator[AuditService]:
    service = build(settings, configure_logs=False)
    await service.runtime.app.start()
    try:
        yield service
    finally:
        await service.runtime.app.stop()


@dataclass(frozen=True, slots=True)
class Published:
    fact: Fact | RawFact
    partition: int
    offset: int


async def publish(
    bootstrap: str, catalogue: TopicCatalogue, facts: Sequence[Fact | RawFact]
) -> list[Published]:
    """Publish in order, each acknowledged before the next (source order = list order)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    result = []
    try:
        for fact in facts:
            if isinstance(fact, Fact):
                encoded = fact.encoded()
                key, value, headers = encoded.key, encoded.value, encoded.headers
            else:
                key, value, headers = fact.key, fact.value, list(fact.headers)
            meta = await producer.send_and_wait(
                catalogue.name(fact.topic), value, key=key, headers=headers
            )
            result.append(Published(fact, meta.partition, meta.offset))
    finally:
        await producer.stop()
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


async def _lag(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        return sum(max(0, ends[tp] - done.get(tp, 0)) for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


async def caught_up(deployment: Deployment, group: str, within: float = WITHIN_S) -> None:
    """Wait until `group` committed every source record, dead letters produced meanwhile too."""
    topics = [deployment.topic(t) for t in AUDITED_TOPICS]
    deadline = asyncio.get_running_loop().time() + within
    lag = -1
    while asyncio.get_running_loop().time() < deadline:
        lag = await _lag(deployment.bootstrap, group, topics)
        if lag == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"audit group {group} still {lag} record(s) behind after {within}s")


async def eventually(condition: Callable[[], Any], within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(0.1)


async def stored_documents(deployment: Deployment) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(deployment.mongodb_uri)
    try:
        return await client[deployment.database]["audit_log"].find({}).to_list(None)
    finally:
        await client.close()
