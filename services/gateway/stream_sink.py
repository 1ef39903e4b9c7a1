"""One live stream's inbox: records of its session, bounded, filled by the replica's reader.

The reader never waits for a client: `offer` is synchronous and, past `capacity` items not yet
sent, drops the stream (`slow_client`) instead of blocking. The stream then sends what it
holds, a `stream_dropped` event with its resumable id, and ends; the client reconnects with
that id and replays from Kafka what it missed. So one slow client costs its own buffer only.
"""

import asyncio
from dataclasses import dataclass

from contracts.base import Message
from contracts.stream_events import DropReason
from services.gateway.stream_cursor import StreamTopic


@dataclass(frozen=True, slots=True)
class StreamItem:
    """A decoded record of `session-events` or `llm-stream`, with its Kafka position."""

    topic: StreamTopic
    partition: int
    offset: int
    timestamp_ms: int
    message: Message


class StreamSink:
    def __init__(self, session_id: str, capacity: int) -> None:
        self.session_id = session_id
        self._capacity = capacity
        # Unbounded as a queue, bounded by `offer`: room is always left for the end marker.
        self._queue: asyncio.Queue[StreamItem | None] = asyncio.Queue()
        self.dropped: DropReason | None = None
        self.ended = False

    def offer(self, item: StreamItem) -> None:
        if self.dropped is not None or self.ended:
            return
        if self._queue.qsize() >= self._capacity:
            self.drop(DropReason.SLOW_CLIENT)
            return
        self._queue.put_nowait(item)

    def drop(self, reason: DropReason) -> None:
        if self.dropped is None:
            self.dropped = reason
            self._queue.put_nowait(None)

    def end(self) -> None:
        """End the stream after what it holds, without a last event: the replica stops, and
        the client reconnects with its last id (elsewhere) instead of holding the shutdown."""
        if self.dropped is None and not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def next(self, timeout_s: float) -> StreamItem | None:
        """The next record; None after `timeout_s` of silence or once dropped (or ended) and
        drained."""
        if not self._queue.empty():  # no timer and no task when a record is already here
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(timeout_s):
                return await self._queue.get()
        except TimeoutError:
            return None
