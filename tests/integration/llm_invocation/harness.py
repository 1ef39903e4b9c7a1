"""Running llm-invocation in this process against the real broker and Mongo-compatible server:
its topics under a prefix of one test, publishing requests, reading what comes out."""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.base import Message
from contracts.codec import decode, encode
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.llm_invocation.app import LLMInvocationService, build
from services.llm_invocation.settings import LLMInvocationSettings

TOPICS = (
    TopicName.LLM_REQUESTS,
    TopicName.LLM_STREAM,
    TopicName.LLM_RESULTS,
    TopicName.SESSION_EVENTS,
    TopicName.DEAD_LETTERS,
)


@asynccontextmanager
async def provisioned_topics(bootstrap: str, prefix: str) -> AsyncIterator[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=prefix, partitions=4)
    specs = [catalogue.spec(topic) for topic in TOPICS]
    await ensure_topics(bootstrap, specs)
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [spec.name for spec in specs])


def settings_for(
    bootstrap: str, mongodb_uri: str, database: str, prefix: str, group: str, **overrides: object
) -> LLMInvocationSettings:
    options: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "mongodb_uri": mongodb_uri,
        "mongodb_database": database,
        "topic_prefix": prefix,
        "llm_consumer_group": group,
        "llm_provider": "offline",  # unless a test says otherwise, whatever the environment
        "commit_interval_s": 0.2,
        "health_port": 0,
        "health_host": "127.0.0.1",
        "log_format": "console",
    }
    options.update(overrides)
    return LLMInvocationSettings(**options)  # type: ignore[arg-type]


@asynccontextmanager
async def running(settings: LLMInvocationSettings) -> AsyncIterator[LLMInvocationService]:
    service = build(settings, configure_logs=False)
    await service.runtime.app.start()
    try:
        if service.watcher is not None:
            await service.watcher.ready()
        yield service
    finally:
        await service.runtime.app.stop()


async def publish(bootstrap: str, topic: str, *messages: Message) -> None:
    """Publish as agent-orchestration would (CloudEvents headers) and wait for the acks."""
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
    """Everything on one topic from its beginning, decoded, with its partition."""

    bootstrap: str
    topic: str
    messages: list[Message] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done(self.messages):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {within} s on {self.topic} waiting for {what}; "
                    f"got {len(self.messages)} message(s)"
                )
            batches = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    self.messages.append(decode(record.value, record.headers or ()).message)
                    self.partitions.append(record.partition)
        return list(self.messages)

    async def wait_for_count(self, count: int, what: str, within: float = 30.0) -> list[Message]:
        return await self.wait_for(lambda messages: len(messages) >= count, what, within)
