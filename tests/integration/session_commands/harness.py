"""Running session-commands against the real broker and Mongo-compatible server: topics under a
prefix of the test alone, the service in this process (or a subprocess), publishing commands as
upstream would, and reading `session-events` as a client would."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.base import Message
from contracts.codec import decode, encode
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.session_commands.app import SessionCommandsService, build
from services.session_commands.settings import SessionCommandsSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
TOPICS = (TopicName.COMMANDS, TopicName.TURNS, TopicName.SESSION_EVENTS, TopicName.DEAD_LETTERS)


@asynccontextmanager
async def provisioned_topics(
    bootstrap: str, prefix: str, partitions: int = 4
) -> AsyncIterator[TopicCatalogue]:
    """The service's topics under a prefix of this test alone (equal partition counts, as
    co-partitioning requires); deleted afterwards."""
    catalogue = TopicCatalogue(prefix=prefix, partitions=partitions)
    specs = [catalogue.spec(topic) for topic in TOPICS]
    await ensure_topics(bootstrap, specs)
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [spec.name for spec in specs])


def settings_for(
    bootstrap: str, mongodb_uri: str, database: str, prefix: str, group: str, **overrides: Any
) -> SessionCommandsSettings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "mongodb_uri": mongodb_uri,
        "mongodb_database": database,
        "topic_prefix": prefix,
        "session_commands_consumer_group": group,
        "commit_interval_s": 0.2,
        "health_port": 0,
        "health_host": "127.0.0.1",
        "log_format": "console",
        "log_level": "WARNING",
        **overrides,
    }
    return SessionCommandsSettings(**values)


def environment_for(settings: SessionCommandsSettings) -> dict[str, str]:
    """The same settings as AGENT_RUNTIME_* variables, for a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    for name, value in settings.model_dump(exclude_none=True).items():
        if name in SessionCommandsSettings.model_fields:
            env[f"AGENT_RUNTIME_{name.upper()}"] = str(getattr(value, "value", value))
    return env


@asynccontextmanager
async def running(
    settings: SessionCommandsSettings, *, run_expiry_job: bool = False
) -> AsyncIterator[SessionCommandsService]:
    service = build(settings, configure_logs=False, run_expiry_job=run_expiry_job)
    await service.runtime.app.start()
    try:
        yield service
    finally:
        await service.runtime.app.stop()


class ServiceProcess:
    """`python -m services.session_commands` as a subprocess (for crash tests)."""

    def __init__(self, settings: SessionCommandsSettings, **extra_env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.session_commands"],
            cwd=REPO_ROOT,
            env={**environment_for(settings), **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def wait_exit(self, within: float) -> int:
        deadline = asyncio.get_running_loop().time() + within
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"service did not exit within {within}s")
            await asyncio.sleep(0.05)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-4000:]


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

    async def send_raw(self, topic: str, key: bytes, value: bytes) -> None:
        await self._producer.send_and_wait(topic, value, key=key)


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
        assert self._consumer is not None
        deadline = asyncio.get_running_loop().time() + within
        while not done(self.messages):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                seen = [type(m).__name__ for m in self.messages[-20:]]
                raise AssertionError(
                    f"timed out after {within}s on {self.topic} waiting for: {what}; "
                    f"{len(self.messages)} messages, the last: {seen}"
                )
            batches = await self._consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for records in batches.values():
                for record in records:
                    self.messages.append(decode(record.value, record.headers or ()).message)
        return list(self.messages)

    async def settle(self, quiet_for: float = 2.0) -> list[Message]:
        """Read until nothing new arrives for `quiet_for` seconds (to show that nothing more
        comes, after the expected messages were awaited)."""
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=int(quiet_for * 1000))
            if not batches:
                return list(self.messages)
            for records in batches.values():
                for record in records:
                    self.messages.append(decode(record.value, record.headers or ()).message)

    def of_session(self, session_id: str) -> list[Message]:
        return [m for m in self.messages if m.session_id == session_id]

    def of_type(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


def type_names(messages: Iterable[Message]) -> list[str]:
    return [type(m).__name__ for m in messages]


async def wait_caught_up(
    bootstrap: str, group: str, topics: Sequence[str], partitions: int, within: float = 60.0
) -> None:
    """Until `group` has committed the end offset of every partition of `topics`."""
    ends_reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await ends_reader.start()
    await admin.start()
    try:
        wanted = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await ends_reader.end_offsets(wanted)
        deadline = asyncio.get_running_loop().time() + within
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {
                tp: end - (committed[tp].offset if tp in committed else 0)
                for tp, end in ends.items()
                if end > (committed[tp].offset if tp in committed else 0)
            }
            if not behind:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"group {group} still behind after {within}s: {behind}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
        await ends_reader.stop()
