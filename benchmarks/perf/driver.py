"""The load: sessions created up front, then user messages closed-loop (each session sends its
next message when its turn completed) or open-loop (a fixed rate, each message to an idle
session). A turn's latency is the Kafka CreateTime of its `turn.completed.v1` minus the time
its message was sent; the driver reads only headers, never bodies."""

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.agents import AgentType
from contracts.base import derive_id
from contracts.codec import encode
from contracts.commands import Command, CreateSession, SubmitUserMessage

QUESTIONS = (
    "What is the difference between a process and a thread?",
    "Which consistency guarantees does a Kafka consumer group give?",
    "What is a good name for a conversation about databases?",
)
TENANT = "tenant-bench"
CREATED = b"session.created.v1"
COMPLETED = b"turn.completed.v1"
FAILED = (b"turn.failed.v1", b"session.command_rejected.v1")


@dataclass
class Phase:
    """One measurement's sessions and what came back for them."""

    sessions: list[str]
    created: set[str] = field(default_factory=set)
    sent_at: dict[str, float] = field(default_factory=dict)  # session → send time (ms)
    turns: dict[str, int] = field(default_factory=dict)
    completed: list[tuple[float, float]] = field(default_factory=list)  # (received s, latency ms)
    failed: int = 0
    on_complete: Callable[[str], None] | None = None

    def idle(self, session: str) -> bool:
        return session not in self.sent_at


class Driver:
    def __init__(self, bootstrap: str, commands_topic: str, events: list[TopicPartition]) -> None:
        self._commands = commands_topic
        self._events = events
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=10
        )
        self._phase: Phase | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        self._consumer.assign(self._events)
        await self._consumer.seek_to_end(*self._events)
        for tp in self._events:
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._producer.stop()
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=10_000)
            phase = self._phase
            if phase is None:
                continue
            now = time.time()
            for records in batches.values():
                for record in records:
                    kind = next((bytes(v) for k, v in record.headers if k == "ce_type"), b"")
                    if kind == COMPLETED:
                        self._complete(phase, record.key.decode(), record.timestamp, now)
                    elif kind == CREATED:
                        phase.created.add(record.key.decode())
                    elif kind in FAILED:
                        phase.failed += 1

    def _complete(self, phase: Phase, session: str, timestamp_ms: float, now: float) -> None:
        sent = phase.sent_at.pop(session, None)
        if sent is None:
            return
        phase.completed.append((now, timestamp_ms - sent))
        if phase.on_complete is not None:
            phase.on_complete(session)

    async def _send(self, command: Command) -> None:
        record = encode(command, source="bench", correlation_id=command.id)
        future = await self._producer.send(
            self._commands, record.value, key=record.key, headers=record.headers
        )
        self._pending.append(future)
        if len(self._pending) >= 500:
            await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)

    async def create(self, phase: Phase, timeout_s: float = 120.0) -> None:
        """Create the phase's sessions and wait until every one is."""
        self._phase = phase
        for session in phase.sessions:
            await self._send(
                CreateSession(
                    id=derive_id("cmd", session, "create"),
                    session_id=session,
                    tenant_id=TENANT,
                    title="bench",
                    initial_agent=AgentType.ASK,
                )
            )
        await self.flush()
        await _until(lambda: len(phase.created) >= len(phase.sessions), timeout_s, "sessions")

    async def submit(self, phase: Phase, session: str) -> None:
        turn = phase.turns.get(session, 0)
        phase.turns[session] = turn + 1
        phase.sent_at[session] = time.time() * 1000
        await self._send(
            SubmitUserMessage(
                id=derive_id("cmd", session, turn),
                message_id=derive_id("msg", session, turn),
                session_id=session,
                tenant_id=TENANT,
                content=QUESTIONS[turn % len(QUESTIONS)],
            )
        )

    async def closed_loop(
        self, phase: Phase, seconds: float, at_window: Callable[[], Awaitable[None]]
    ) -> float:
        """Every session keeps one turn in flight. The window opens once as many turns as there
        are sessions completed (the first wave moves through the stages as one convoy, not a
        steady state) and lasts `seconds`; returns its end."""
        ready: asyncio.Queue[str] = asyncio.Queue()
        phase.on_complete = ready.put_nowait
        for session in phase.sessions:
            await self.submit(phase, session)
        await self.flush()
        window_at = len(phase.sessions)
        end: float | None = None
        warm_up_deadline = time.time() + 120
        while end is None or time.time() < end:
            if end is None and (
                len(phase.completed) >= window_at or time.time() > warm_up_deadline
            ):
                await at_window()
                end = time.time() + seconds
            with contextlib.suppress(TimeoutError):
                session = await asyncio.wait_for(ready.get(), 0.2)
                await self.submit(phase, session)
                while not ready.empty():
                    await self.submit(phase, ready.get_nowait())
                await self.flush()
        phase.on_complete = None
        return end

    async def open_loop(
        self,
        phase: Phase,
        rate: float,
        seconds: float,
        every_second: Callable[[], Awaitable[None]],
    ) -> int:
        """`rate` turns/s for `seconds`, each to an idle session; returns the sends skipped
        because no session was idle (the pool holds several seconds of the rate)."""
        rng = random.Random(7)
        idle = list(phase.sessions)
        phase.on_complete = idle.append
        skipped = 0
        started = time.monotonic()
        sent = 0
        next_tick = started + 1.0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                sent += 1
                if not idle:
                    skipped += 1
                    continue
                index = rng.randrange(len(idle))
                idle[index], idle[-1] = idle[-1], idle[index]
                await self.submit(phase, idle.pop())
            await self.flush()
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                await every_second()
            await asyncio.sleep(max(0.0, (sent / rate) - (time.monotonic() - started)))
        phase.on_complete = None
        return skipped

    async def settle(self, phase: Phase, timeout_s: float) -> None:
        """Until every turn sent has completed (or `timeout_s`)."""
        with contextlib.suppress(TimeoutError):
            await _until(lambda: not phase.sent_at, timeout_s, "turns")


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout_s:.0f}s")
        await asyncio.sleep(0.05)
