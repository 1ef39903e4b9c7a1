"""Watches session-events and tells the work running in this process (LLM invocations, tool
calls) about the facts of its sessions, so that work whose turn or session is over is stopped.

Why a plain consumer without a group: llm-invocation's work runs on whichever instance owns the
session's llm-requests partition, and nothing aligns that with a group's assignment of
session-events; tool-invocation's consumer group blocks a session's later facts behind its
running call (one record per session at a time), so a cancel would wait for the call it should
stop. So every instance reads every partition, from the end (a fact from before the start cannot
concern work that starts later), commits nothing, and acts only on sessions it has in flight —
decoding nothing else. Its effect, cancelling a local task, is not durable, so a missed fact
costs at worst an answer nobody reads.
Records that do not decode are skipped: the session-events consumers own dead-lettering.

Cancellations are the exception: a TurnCancelled of any session is remembered (cancelled_turns.py),
told apart by its `ce_type` header without decoding anything else, and at start the watcher
reads back `lookback_s` of history for them, so that work redelivered after a crash between
a cancel and its abort is answered `cancelled` instead of being done again. Given `ended`
(tool-invocation), the ends of turns (TurnCompleted, TurnFailed, TurnStopped) are remembered
the same way, in a window of their own (every turn ends, few are cancelled: they must not push
the cancellations out): a tool call whose turn was over before the call got
its turn — its session closed, erased or expired, or its tool deadline passed, while the
consumer group lagged or the service was down — is not run (a tool's side effects cannot be
taken back, and nothing would take its result).
"""

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from aiokafka import AIOKafkaConsumer

from contracts.base import Message
from contracts.codec import DecodeError, decode
from contracts.registry import type_name
from contracts.session_events import TurnCancelled, TurnCompleted, TurnFailed, TurnStopped
from contracts.topics import TopicName
from services.runtime.cancelled_turns import CancelledTurns
from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options

log = logging.getLogger(__name__)

_CANCELLED_TYPE = type_name(TurnCancelled).encode()
_TURN_END_TYPES = frozenset(
    type_name(event).encode() for event in (TurnCompleted, TurnFailed, TurnStopped)
)


class WatchedWork(Protocol):
    """The work running in this process, by session."""

    def has_session(self, session_id: str) -> bool: ...
    def on_fact(self, fact: Message) -> None:
        """A session fact of a session `has_session` answered True for: stop what it ends."""


class SessionEventsWatcher:
    def __init__(
        self,
        connection: KafkaSecuritySettings,
        topic: str,
        in_flight: WatchedWork,
        cancelled: CancelledTurns | None = None,
        *,
        lookback_s: float = 0.0,
        client_id: str = "session-watch",
        ended: CancelledTurns | None = None,
    ) -> None:
        self._connection = connection
        self._client_id = client_id
        self._topic = topic
        self._in_flight = in_flight
        self.cancelled = cancelled if cancelled is not None else CancelledTurns()
        self._lookback_s = lookback_s
        self.ended = ended
        self._remembered_types = frozenset({_CANCELLED_TYPE}) | (
            _TURN_END_TYPES if ended is not None else frozenset()
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._connection.kafka_bootstrap_servers,
            client_id=self._client_id,
            **kafka_client_options(self._connection),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="session-events-watch")

    async def ready(self, within_s: float = 30.0) -> None:
        """Caught up with the history read back at start, and positioned so that facts
        published from now on are seen."""
        await asyncio.wait_for(self._ready.wait(), within_s)

    async def caught_up(self, within_s: float = 30.0) -> None:
        """`ready`, but a slow read-back only delays nothing further: it is logged."""
        try:
            await self.ready(within_s)
        except TimeoutError:
            log.warning("session-events watch: not caught up after %.0f s; going on", within_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                # aiokafka's fetcher, closing, awaits the fetch it just cancelled, which
                # re-raises when that fetch was sleeping out a retry backoff (the broker down at
                # SIGTERM): its task's cancellation, not ours. Let through, it skipped the
                # service's other shutdown hooks and ended it with a bare traceback, exit 1.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        partitions = consumer.assignment()
        for partition in partitions:
            await consumer.position(partition)  # resolves "latest" now, not at the first fetch
        if self._lookback_s > 0:
            await self._read_back(consumer)
        self._ready.set()
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except Exception:  # the watcher must outlive broker hiccups
                log.exception("session-events watch: fetch failed")
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._consider(record)

    async def _read_back(self, consumer: AIOKafkaConsumer) -> None:
        """Replay the last `lookback_s` of cancellations, up to the end as of now."""
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        since_ms = int((time.time() - self._lookback_s) * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        behind = {}
        for partition, found in starts.items():
            if found is not None and found.offset < ends[partition]:
                consumer.seek(partition, found.offset)
                behind[partition] = ends[partition]
        while behind:
            batches = await consumer.getmany(*behind, timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    self._consider(record)
            for partition in list(behind):
                if await consumer.position(partition) >= behind[partition]:
                    del behind[partition]

    def _consider(self, record: object) -> None:
        key = getattr(record, "key", None)
        headers = getattr(record, "headers", None) or ()
        if any(name == "ce_type" and value in self._remembered_types for name, value in headers):
            self._remember_end(record)
        if key is None or not self._in_flight.has_session(key.decode("utf-8", "replace")):
            return  # nothing of this session runs here: do not even decode
        try:
            fact = decode(
                getattr(record, "value", None),
                getattr(record, "headers", None) or (),
                topic=TopicName.SESSION_EVENTS,
            ).message
        except DecodeError:
            return
        self._in_flight.on_fact(fact)

    def _remember_end(self, record: object) -> None:
        try:
            fact = decode(
                getattr(record, "value", None),
                getattr(record, "headers", None) or (),
                topic=TopicName.SESSION_EVENTS,
            ).message
        except DecodeError:
            return
        if isinstance(fact, TurnCancelled) and not fact.queued:
            self.cancelled.add(fact.turn_id, fact.reason.value)
        elif self.ended is None:
            return
        elif isinstance(fact, TurnCompleted):
            self.ended.add(fact.turn_id, "turn completed")
        elif isinstance(fact, TurnFailed):
            self.ended.add(fact.turn_id, f"turn failed: {fact.error_class}")
        elif isinstance(fact, TurnStopped):
            self.ended.add(fact.turn_id, f"turn stopped ({fact.reason.value})")
