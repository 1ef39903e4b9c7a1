"""One reader of `session-events` (and `llm-stream`) per gateway replica: outcomes for waiting
requests, and the records of live streams.

Why no consumer group: every replica must see the outcome of the commands *it* published,
whatever partition they land on, and nothing here is durable work to commit: a request waits
for an event that follows its own command, so the reader only has to be positioned before the
command is produced. It assigns every partition, seeks to the end once at start, and then
dispatches in memory. Only records a waiter asked for are decoded (the causation header or
the turn id decides), so an idle replica costs one fetch loop. Live streams (streams.py)
attach a bounded `StreamSink` by session id instead of opening a consumer per client; a record
is decoded once, whatever the number of streams of its session.

Waiters: `watch(command_id=..., turn_id=...)` registers *before* the command is produced and
collects every matching event; `Watch.next()` awaits the next one with a timeout.
"""

import asyncio
import contextlib
import heapq
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contracts.base import Message
from contracts.codec import DecodeError, decode
from contracts.envelope import H_CAUSATION_ID
from contracts.session_events import SessionClosed, SessionErased, SessionEvent, SessionExpired
from contracts.stream_events import DropReason
from contracts.topics import TopicName
from services.gateway.shutdown import stop_within
from services.gateway.stream_cursor import Cursor, StreamTopic
from services.gateway.stream_sink import StreamItem, StreamSink
from services.runtime.kafka_access import unauthorized_topics
from services.runtime.kept_results_erasure import is_erasure_header

log = logging.getLogger(__name__)

_RETRY_S = 1.0


SESSION_ENDS = (SessionClosed, SessionExpired, SessionErased)
"""After these the session runs no turn: every waiter of the session is told."""


@dataclass(eq=False)
class Watch:
    command_id: str | None
    turn_id: str | None
    session_id: str
    decided: bool = False
    """An event caused by `command_id` was delivered (its decision comes first)."""
    events: asyncio.Queue[SessionEvent] = field(default_factory=asyncio.Queue)

    async def next(self, timeout_s: float) -> SessionEvent | None:
        """The next matching event, or None when `timeout_s` passes without one."""
        if not self.events.empty():
            return self.events.get_nowait()
        if timeout_s <= 0:
            return None
        try:
            async with asyncio.timeout(timeout_s):  # unlike wait_for, no task per wait
                return await self.events.get()
        except TimeoutError:
            return None


class SessionEventFeed:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        client_options: Mapping[str, Any] | None = None,
        request_timeout_ms: int = 10_000,
        stream_topic: str | None = None,
        on_erased: Callable[[str], None] | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._on_erased = on_erased  # told each SessionErased's session id, from the read loop
        self._client_options = dict(client_options or {})  # Kafka security (kafka_security.py)
        self._topic = topic
        self._stream_topic = stream_topic  # llm-stream: read only for live streams' tokens
        self._sinks: dict[str, set[StreamSink]] = defaultdict(set)
        self._consumer: AIOKafkaConsumer | None = None
        self._request_timeout_ms = request_timeout_ms
        self._by_command: dict[str, set[Watch]] = defaultdict(set)
        self._by_session: dict[str, set[Watch]] = defaultdict(set)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ending = False

    @property
    def ready(self) -> bool:
        """Positioned on every partition: a command produced now has its outcome seen."""
        return self._ready.is_set()

    async def positioned(self) -> None:
        """Returns once the reader is positioned (see `ready`)."""
        await self._ready.wait()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="session-event-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def watch(
        self, session_id: str, *, command_id: str | None = None, turn_id: str | None = None
    ) -> Iterator[Watch]:
        item = Watch(command_id=command_id, turn_id=turn_id, session_id=session_id)
        if command_id is not None:
            self._by_command[command_id].add(item)
        if turn_id is not None:
            self._by_session[session_id].add(item)
        try:
            yield item
        finally:
            self._discard(self._by_command, command_id, item)
            self._discard(self._by_session, session_id, item)

    def attach(self, sink: StreamSink) -> None:
        """From now on every record of the sink's session is offered to it."""
        self._sinks[sink.session_id].add(sink)
        if self._ending:
            sink.end()

    def end_streams(self) -> None:
        """The replica stops: every live stream ends now, after what it holds, and one that
        opens from now on ends at once. An open stream would otherwise hold the shutdown for the
        whole drain timeout and then be cut mid-body; its client resumes elsewhere instead."""
        self._ending = True
        for sinks in self._sinks.values():
            for sink in sinks:
                sink.end()

    def detach(self, sink: StreamSink) -> None:
        found = self._sinks.get(sink.session_id)
        if found is not None:
            found.discard(sink)
            if not found:
                del self._sinks[sink.session_id]

    @property
    def stream_count(self) -> int:
        return sum(len(sinks) for sinks in self._sinks.values())

    def partition_count(self) -> int:
        """Partitions of `session-events` (= of `llm-stream`: the topics are co-partitioned)."""
        consumer = self._consumer
        partitions = consumer.partitions_for_topic(self._topic) if consumer else None
        if consumer is None or not partitions or not self.ready:
            raise KafkaError("the session-event feed is not positioned")
        if self._stream_topic is not None:
            tokens = consumer.partitions_for_topic(self._stream_topic)
            if tokens is not None and len(tokens) != len(partitions):
                # One partition number per session only holds if the topics are co-partitioned.
                raise KafkaError(f"{self._stream_topic} and {self._topic} differ in partitions")
        return len(partitions)

    async def bounds(self, partition: int) -> tuple[Cursor, Cursor]:
        """(first kept, next to be written) positions of one partition of both topics."""
        consumer, events, tokens = self._partition(partition)
        first = await consumer.beginning_offsets([events, tokens])
        return Cursor(partition, first[events], first[tokens]), await self.end(partition)

    async def end(self, partition: int) -> Cursor:
        """The next to be written positions of one partition of both topics: one request, all
        a new stream needs (a resume also needs the first kept, `bounds`)."""
        consumer, events, tokens = self._partition(partition)
        end = await consumer.end_offsets([events, tokens])
        return Cursor(partition, end[events], end[tokens])

    def _partition(self, partition: int) -> tuple[AIOKafkaConsumer, TopicPartition, TopicPartition]:
        consumer = self._consumer
        if consumer is None or not self.ready or self._stream_topic is None:
            raise KafkaError("the session-event feed is not positioned")
        events = TopicPartition(self._topic, partition)
        tokens = TopicPartition(self._stream_topic, partition)
        if not {events, tokens} <= consumer.assignment():
            raise KafkaError(f"{self._stream_topic} is not read (missing, or other partitions)")
        return consumer, events, tokens

    @staticmethod
    def _discard(index: dict[str, set[Watch]], key: str | None, item: Watch) -> None:
        if key is not None and key in index:
            index[key].discard(item)
            if not index[key]:
                del index[key]

    async def _run(self) -> None:
        failing: str | None = None  # the error of the retries in a row, None once positioned
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                request_timeout_ms=self._request_timeout_ms,
                **self._client_options,
            )
            try:
                await consumer.start()
                await self._position(consumer)
                self._consumer = consumer
                failing = None
                while True:
                    batches = await consumer.getmany(timeout_ms=1_000)
                    # Across partitions Kafka keeps no order: merged by record time (a turn's
                    # tokens precede its later events), each partition kept in offset order.
                    records = heapq.merge(*batches.values(), key=lambda r: r.timestamp)
                    for record in records:
                        if record.topic == self._topic:
                            self._dispatch(record.key, record.value, record.headers)
                        if self._sinks:
                            self._offer(record)
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as error:
                # One line when the feed starts failing (or fails differently), not one per
                # retry: a broker down at start wrote one a second. The outage itself is
                # summarised with aiokafka's lines (broker_outage_log.py), and the feed's
                # "positioned" line says when it is back.
                text = str(error)
                level = logging.DEBUG if text == failing else logging.WARNING
                log.log(level, "session-event feed: %s; retrying every %.0fs", text, _RETRY_S)
                failing = text
            except Exception:  # never let the reader die: every wait would then time out
                log.exception("session-event feed failed; retrying in %.0fs", _RETRY_S)
            finally:
                self._ready.clear()
                self._consumer = None
                # Positioned at the end again, the reader would skip records: streams end
                # with their resumable id and their clients replay the gap.
                for sinks in list(self._sinks.values()):
                    for sink in list(sinks):
                        sink.drop(DropReason.READER_RESTARTED)
                await stop_within(consumer.stop(), 5.0, "session-event reader")
            await asyncio.sleep(_RETRY_S)

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        # Without a group, a subscription is assigned every partition of the topic (and new
        # ones as metadata shows them); with nothing committed, "latest" starts at the end.
        topics = [self._topic]
        if self._stream_topic:
            # Only if it exists: a subscription's metadata request may auto-create a topic,
            # with the broker's partition count instead of the catalogue's.
            if self._stream_topic in await consumer.topics():
                topics.append(self._stream_topic)
            elif await unauthorized_topics(consumer._client, [self._stream_topic]):
                # Not "does not exist": Kafka lists only the topics the ACLs let it describe.
                log.warning(
                    "Kafka does not let the gateway's principal read %s: its ACLs grant it no "
                    "access (docs/security.md); live streams answer 503",
                    self._stream_topic,
                )
            else:
                log.warning("%s does not exist: live streams answer 503", self._stream_topic)
        consumer.subscribe(topics)
        deadline = asyncio.get_running_loop().time() + self._request_timeout_ms / 1000
        while {tp.topic for tp in consumer.assignment()} != set(topics):
            if asyncio.get_running_loop().time() > deadline:
                raise KafkaError(f"no partitions of {topics} assigned (topic missing?)")
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():  # resolve the positions now: ready means positioned
            await consumer.position(tp)
        self._ready.set()
        log.info("session-event feed positioned on %s", topics)

    def _dispatch(
        self, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        causation = next(
            (v.decode(errors="replace") for k, v in headers if k == H_CAUSATION_ID), ""
        )
        session_id = key.decode(errors="replace") if key else ""
        if self._on_erased is not None and any(is_erasure_header(k, v) for k, v in headers):
            self._on_erased(session_id)
        by_command = self._by_command.get(causation, set())
        by_session = self._by_session.get(session_id, set())
        if not by_command and not by_session:
            return
        try:
            event = decode(value, headers, topic=TopicName.SESSION_EVENTS).message
        except DecodeError as error:
            log.warning("session-event feed: undecodable record skipped: %s", error)
            return
        if not isinstance(event, SessionEvent):
            return
        event_turn = getattr(event, "turn_id", None)
        # A turn's events reach its waiter only after its command's decision, which must be
        # the first event it reads: a retried command that was applied before has a running
        # turn whose events would otherwise pass for the decision (a TurnStarted taken for it
        # left the answer `pending`).
        waiters = by_command | {
            w for w in by_session if w.turn_id == event_turn and (w.decided or w.command_id is None)
        }
        if isinstance(event, SESSION_ENDS):
            # Also to every turn's waiter whose command was decided: a message queued behind
            # the running turn is dropped with no event of its own, so its waiter learns here
            # that its turn will never run. (Before the decision it is not told: its command
            # is refused next, and the refusal must be the first event it reads.)
            waiters |= {w for w in by_session if w.decided or w.command_id is None}
        for item in by_command:
            item.decided = True
        for item in waiters:
            item.events.put_nowait(event)

    def _offer(self, record: Any) -> None:
        key: bytes | None = record.key
        sinks = self._sinks.get(key.decode(errors="replace") if key else "")
        if not sinks:
            return
        topic = (
            StreamTopic.SESSION_EVENTS if record.topic == self._topic else StreamTopic.LLM_STREAM
        )
        try:
            message = decode(record.value, record.headers, topic=TopicName(topic.value)).message
        except DecodeError as error:
            log.warning("stream feed: undecodable record skipped: %s", error)
            return
        if not isinstance(message, Message):
            return
        item = StreamItem(topic, record.partition, record.offset, record.timestamp, message)
        for sink in list(sinks):
            sink.offer(item)
