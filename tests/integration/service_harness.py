"""Running a service in this process against the real broker, for the integration tests of every
service: topics under a prefix of one test, publishing as upstream services would, reading what
the service publishes, and waiting on conditions with deadlines (never sleep-and-hope)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata

from contracts.base import Message
from contracts.codec import decode, encode
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.runtime import ServiceRuntime


def runtime_settings(bootstrap: str, prefix: str) -> dict[str, Any]:
    """The runtime settings of a service under test: its topics, quick commits (tests wait on
    them), a free health port on loopback, readable logs."""
    return {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "commit_interval_s": 0.2,
        "health_port": 0,
        "health_host": "127.0.0.1",
        "log_format": "console",
    }


@asynccontextmanager
async def provisioned_topics(
    bootstrap: str, catalogue: TopicCatalogue, names: Iterable[TopicName] | None = None
) -> AsyncIterator[TopicCatalogue]:
    """The catalogue's topics (`names`, or all of them) created, and deleted afterwards."""
    specs = catalogue.specs() if names is None else [catalogue.spec(name) for name in names]
    await ensure_topics(bootstrap, specs)
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [spec.name for spec in specs])


class InProcessService(Protocol):
    @property
    def runtime(self) -> ServiceRuntime: ...


S = TypeVar("S", bound=InProcessService)


@asynccontextmanager
async def started(service: S) -> AsyncIterator[S]:
    """The service's FastStream app started in this process, stopped (drained) afterwards."""
    await service.runtime.app.start()
    try:
        yield service
    finally:
        await service.runtime.app.stop()


class Publisher:
    """Publishes as upstream does (CloudEvents headers, key = session id), one producer."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )

    async def __aenter__(self) -> "Publisher":
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, topic: str, *messages: Message) -> None:
        """Send in order, then wait for every ack."""
        futures = []
        for message in messages:
            record = encode(message, source="test", correlation_id=f"corr-{message.id}")
            futures.append(
                await self._producer.send(
                    topic, record.value, key=record.key, headers=record.headers
                )
            )
        await asyncio.gather(*futures)

    async def send_raw(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> RecordMetadata:
        """One record as given (poison, pre-encoded), acknowledged before this returns."""
        return await self._producer.send_and_wait(topic, value, key=key, headers=list(headers))


async def publish(bootstrap: str, topic: str, *messages: Message) -> None:
    async with Publisher(bootstrap) as publisher:
        await publisher.send(topic, *messages)


async def publish_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    async with Publisher(bootstrap) as publisher:
        await publisher.send_raw(topic, key, value)


@dataclass
class TopicReader:
    """Everything on one topic from its beginning, decoded, gathered as it arrives."""

    bootstrap: str
    topic: str
    messages: list[Message] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "TopicReader":
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def wait_for(
        self, done: Callable[[Sequence[Message]], bool], what: str, within: float = 30.0
    ) -> list[Message]:
        deadline = asyncio.get_running_loop().time() + within
        while not done(self.messages):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = [type(m).__name__ for m in self.messages[-20:]]
                raise AssertionError(
                    f"timed out after {within}s on {self.topic} waiting for: {what}; "
                    f"{len(self.messages)} messages, the last: {seen}"
                )
            await self._read(min(left, 0.5))
        return list(self.messages)

    async def wait_for_count(self, count: int, what: str, within: float = 30.0) -> list[Message]:
        return await self.wait_for(lambda messages: len(messages) >= count, what, within)

    async def settle(self, quiet_for: float = 2.0) -> list[Message]:
        """Read until nothing new arrives for `quiet_for` seconds (to show that nothing more
        comes, after the expected messages were awaited)."""
        while await self._read(quiet_for):
            pass
        return list(self.messages)

    def of_session(self, session_id: str) -> list[Message]:
        return [m for m in self.messages if m.session_id == session_id]

    def of_type(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def _read(self, for_at_most: float) -> int:
        """Gather what arrives within `for_at_most` seconds; returns how many records."""
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=int(for_at_most * 1000))
        for records in batches.values():
            for record in records:
                self.messages.append(decode(record.value, record.headers or ()).message)
        return sum(len(records) for records in batches.values())


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.1
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(every)


async def wait_caught_up(
    bootstrap: str, group: str, topics: Sequence[str], partitions: int, within: float = 60.0
) -> None:
    """Until `group` has committed the end offset of every partition of `topics` (the ends
    read again on every poll: records produced meanwhile, dead letters say, count too)."""
    ends_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await ends_reader.start()
    await admin.start()
    try:
        wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        deadline = asyncio.get_running_loop().time() + within
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            done = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
            ends = await ends_reader.end_offsets(wanted)
            behind = {
                tp: end - done.get(tp, 0) for tp, end in ends.items() if end > done.get(tp, 0)
            }
            if not behind:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"group {group} still behind after {within}s: {behind}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
        await ends_reader.stop()
