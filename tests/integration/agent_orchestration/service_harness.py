"""Running agent-orchestration in this process against the real broker, feeding it facts and
reading what it publishes."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.base import Message
from contracts.codec import decode, encode
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.agent_orchestration.app import OrchestrationService, build
from services.agent_orchestration.settings import OrchestrationSettings

TOPICS = (
    TopicName.SESSION_EVENTS,
    TopicName.LLM_RESULTS,
    TopicName.LLM_REQUESTS,
    TopicName.TURNS,
    TopicName.DEAD_LETTERS,
)


@asynccontextmanager
async def provisioned_topics(bootstrap: str, prefix: str) -> AsyncIterator[TopicCatalogue]:
    """The service's topics under a prefix of this test alone; deleted afterwards."""
    catalogue = TopicCatalogue(prefix=prefix, partitions=4)
    specs = [catalogue.spec(topic) for topic in TOPICS]
    await ensure_topics(bootstrap, specs)
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [spec.name for spec in specs])


def settings_for(
    bootstrap: str, prefix: str, group: str, **overrides: object
) -> OrchestrationSettings:
    return OrchestrationSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        orchestration_consumer_group=group,
        commit_interval_s=0.2,
        health_port=0,
        health_host="127.0.0.1",
        log_format="console",
        **overrides,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def running(settings: OrchestrationSettings) -> AsyncIterator[OrchestrationService]:
    service = build(settings, configure_logs=False)
    await service.runtime.app.start()
    try:
        yield service
    finally:
        await service.runtime.app.stop()


async def publish(bootstrap: str, topic: str, *messages: Message) -> None:
    """Publish as upstream services would (CloudEvents headers) and wait for the acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for message in messages:
            record = encode(message, source="test", correlation_id=f"corr-{message.id}")
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )
    finally:
        await producer.stop()


async def publish_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@dataclass
class TopicReader:
    """Everything on one topic from its beginning, decoded, gathered as it arrives."""

    bootstrap: str
    topic: str
    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "TopicReader":
        self._consumer = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest"
        )
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def wait_for(
        self, done: Callable[[Sequence[Message]], bool], what: str, within: float = 30.0
    ) -> list[Message]:
        assert self._consumer is not None
        deadline = asyncio.get_running_loop().time() + within
        while not done(self.messages):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {within}s on {self.topic} waiting for: {what}; "
                    f"got {[type(m).__name__ for m in self.messages]}"
                )
            batches = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    self.raw.append(record.value)
                    self.messages.append(decode(record.value, record.headers or ()).message)
        return list(self.messages)

    async def wait_for_count(self, count: int, what: str, within: float = 30.0) -> list[Message]:
        return await self.wait_for(lambda messages: len(messages) >= count, what, within)


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the group's committed offsets on `topic` (= records it is done with)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def wait_for_commits(
    bootstrap: str, group: str, topic: str, total: int, within: float = 20.0
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (seen := await committed_total(bootstrap, group, topic)) < total:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{group} committed {seen} of {total} records on {topic}")
        await asyncio.sleep(0.2)
