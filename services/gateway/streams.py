"""Live streams of a session (Server-Sent Events): open, replay what a client missed, go live.

    open(): partition of the session → attach a bounded sink to the replica's reader →
            the partition's end positions (taken *after* attaching) → the start cursor:
            the client's `Last-Event-ID` / `?after=`, or those end positions
    frames(): `stream_started` → replay [cursor, end) from Kafka → the sink's live records

No gap: every record at or past the end positions reaches the sink (it was attached first);
everything before them is replayed. No duplicate: a record is sent only at or past the cursor
of its topic, and the cursor moves past each record sent. Everything a caller sees is decided
in `open()`, before the first byte: 404 for another tenant's session, 410 past retention.
"""

import asyncio
import json
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Final

from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from prometheus_client import Counter, Gauge

from contracts.llm import LLMTokenDelta
from contracts.session_events import SessionErased
from contracts.stream_events import (
    STREAM_EVENTS,
    StreamDropped,
    StreamStarted,
    stream_payload,
)
from services.gateway.event_feed import SessionEventFeed
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.stream_cursor import Cursor, InvalidCursor, StreamTopic
from services.gateway.stream_replay import StreamReplay
from services.gateway.stream_sink import StreamItem, StreamSink
from services.runtime.partitioning import partition_for

OPEN_STREAMS = Gauge("gateway_streams_open", "Live SSE streams open on this replica.")
DROPPED_STREAMS = Counter(
    "gateway_streams_dropped_total", "Live streams ended by the gateway, by reason.", ["reason"]
)
# EventSource waits `retry` ms before reconnecting with Last-Event-ID. Each stream gets its own
# value in this range: when a replica drops all its streams at once (reader restart, shutdown),
# its clients come back spread over 3 s instead of in one burst of session reads.
RETRY_MIN_MS: Final = 1_000
RETRY_MAX_MS: Final = 4_000


def reconnect_delay_ms() -> int:
    return random.randint(RETRY_MIN_MS, RETRY_MAX_MS)


StopWhen = Callable[[str, StreamItem], bool]
"""(SSE event name, record) → True when the stream ends after sending it."""


def sse_frame(event: str, data: str, event_id: Cursor | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


@dataclass(slots=True)
class OpenStream:
    """A stream decided and attached, not yet sending; `frames()` sends and then detaches."""

    streams: "SessionStreams"
    tenant_id: str
    sink: StreamSink
    cursor: Cursor
    replay_until: Cursor | None
    resumed: bool
    erased: bool = False
    """The session's erasure was sent: no turn runs after it, so a later delta is the cut-off
    call's text of the erased session, never sent."""

    def close(self) -> None:
        self.streams.feed.detach(self.sink)

    async def frames(self, stop_when: StopWhen | None = None) -> AsyncGenerator[bytes]:
        OPEN_STREAMS.inc()
        try:
            yield f"retry: {reconnect_delay_ms()}\n\n".encode()
            started = StreamStarted(session_id=self.sink.session_id, resumed=self.resumed)
            yield sse_frame("stream_started", started.model_dump_json(), self.cursor)
            if self.replay_until is not None:
                try:
                    missed = await self.streams.replay.read(
                        self.sink.session_id, self.cursor, self.replay_until
                    )
                except OffsetOutOfRangeError:
                    # Retention passed the cursor since `open()` checked it: end here; the
                    # reconnect with the same id is answered 410 `stream_expired`.
                    return
                erased_at = _erasure_index(missed)
                for replayed in missed[:erased_at]:
                    self._skip(replayed)
                for replayed in missed[erased_at:]:
                    frame, finished = self._send(replayed, stop_when)
                    if frame:
                        yield frame
                    if finished:
                        return
            # The heartbeat counts from the last bytes sent, not from the last record: records
            # a client is not shown (another tenant's refused command aimed at this session id,
            # a delta after the erasure) would otherwise hold it off for as long as they come.
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while True:
                quiet_for = loop.time() - quiet_since
                item = await self.sink.next(max(self.streams.heartbeat_s - quiet_for, 0.0))
                if item is None:
                    if self.sink.dropped is not None:
                        DROPPED_STREAMS.labels(self.sink.dropped.value).inc()
                        dropped = StreamDropped(
                            session_id=self.sink.session_id, reason=self.sink.dropped
                        )
                        yield sse_frame("stream_dropped", dropped.model_dump_json(), self.cursor)
                        return
                    if self.sink.ended:
                        return  # the replica stops: EventSource reconnects with its last id
                    yield b": keep-alive\n\n"  # proxies keep an active connection open
                    quiet_since = loop.time()
                    continue
                frame, finished = self._send(item, stop_when)
                if frame:
                    yield frame
                    quiet_since = loop.time()
                if finished:
                    return
        finally:
            OPEN_STREAMS.dec()
            self.close()

    def _skip(self, item: StreamItem) -> None:
        """Past `item` without sending it: a later id must not replay it either."""
        if item.offset >= self.cursor.next_offset(item.topic):
            self.cursor = self.cursor.past(item.topic, item.offset)

    def _send(self, item: StreamItem, stop_when: StopWhen | None) -> tuple[bytes, bool]:
        if item.offset < self.cursor.next_offset(item.topic):
            return b"", False  # sent already (replayed, or before the start)
        self.cursor = self.cursor.past(item.topic, item.offset)
        if isinstance(item.message, SessionErased):
            self.erased = True
        elif self.erased and isinstance(item.message, LLMTokenDelta):
            return b"", False
        name = STREAM_EVENTS.get(type(item.message))
        if name is None or getattr(item.message, "tenant_id", None) != self.tenant_id:
            return b"", False  # not for clients, or another tenant's refused command
        payload = json.dumps({"type": name, **stream_payload(item.message)}, separators=(",", ":"))
        finished = stop_when is not None and stop_when(name, item)
        return sse_frame(name, payload, self.cursor), finished


def _erasure_index(replayed: list[StreamItem]) -> int:
    """Where a replay may start: at the session's erasure if the gap holds one, else 0.

    Kafka keeps an erased session's records until retention (docs/operations.md), but the API
    must not hand its content back: a resume from before the erasure (or from offset 0) gets
    the `session_erased` event and what follows, never the messages, titles and tokens
    before it."""
    for index in range(len(replayed) - 1, -1, -1):
        if isinstance(replayed[index].message, SessionErased):
            return index
    return 0


class SessionStreams:
    def __init__(
        self,
        feed: SessionEventFeed,
        replay: StreamReplay,
        *,
        buffer: int,
        heartbeat_s: float,
        retry_after_s: int,
        max_replay_records: int = 100_000,
    ) -> None:
        self.feed = feed
        self.replay = replay
        self.heartbeat_s = heartbeat_s
        self._buffer = buffer
        self._max_replay_records = max_replay_records
        self._retry_after_s = retry_after_s

    def _unavailable(self) -> ApiProblem:
        return ApiProblem(
            ProblemCode.BROKER_UNAVAILABLE,
            "the gateway is not connected to the broker",
            headers={"Retry-After": str(self._retry_after_s)},
        )

    async def open(self, tenant_id: str, session_id: str, after: str | None) -> OpenStream:
        """Attach and decide where to start; the session's tenant was checked by the caller."""
        try:
            partition = partition_for(session_id, self.feed.partition_count())
        except KafkaError:
            raise self._unavailable() from None
        sink = StreamSink(session_id, self._buffer)
        self.feed.attach(sink)
        try:
            if after is None:
                start = end = await self.feed.end(partition)
            else:
                first, end = await self.feed.bounds(partition)
                start = self._resume_point(after, partition, first, end)
                self._check_gap(start, end)
        except KafkaError:
            self.feed.detach(sink)
            raise self._unavailable() from None
        except ApiProblem:
            self.feed.detach(sink)
            raise
        return OpenStream(
            self,
            tenant_id,
            sink,
            start,
            replay_until=end if after is not None else None,
            resumed=after is not None,
        )

    def _check_gap(self, start: Cursor, end: Cursor) -> None:
        """A replay reads every record of the partition in the gap, every session's: an id
        from long ago (or `v1.<p>.0.0`) would have the replica read days of a partition for
        one client, holding one of the few replay slots meanwhile."""
        gap = sum(end.next_offset(t) - start.next_offset(t) for t in StreamTopic)
        if gap > self._max_replay_records:
            raise ApiProblem(
                ProblemCode.STREAM_EXPIRED,
                f"{gap} records since this id, more than a resume replays "
                f"({self._max_replay_records}); read the history "
                "(GET /v1/sessions/{id}/messages) and open a new stream",
            )

    @staticmethod
    def _resume_point(after: str, partition: int, first: Cursor, end: Cursor) -> Cursor:
        try:
            cursor = Cursor.parse(after)
        except InvalidCursor as error:
            raise ApiProblem(ProblemCode.INVALID_STREAM_ID, str(error)) from None
        topics = (StreamTopic.SESSION_EVENTS, StreamTopic.LLM_STREAM)
        if cursor.partition != partition or any(
            cursor.next_offset(t) > end.next_offset(t) for t in topics
        ):
            raise ApiProblem(ProblemCode.INVALID_STREAM_ID, "not an event id of this session")
        if any(cursor.next_offset(t) < first.next_offset(t) for t in topics):
            raise ApiProblem(
                ProblemCode.STREAM_EXPIRED,
                "events after this id are past the topics' retention; read the history "
                "(GET /v1/sessions/{id}/messages) and open a new stream",
            )
        return cursor
