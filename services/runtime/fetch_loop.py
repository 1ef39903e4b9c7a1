"""How a runtime subscriber waits for records: in `getmany()`, never in a sleep after it.

FastStream's batch subscriber calls `getmany(timeout_ms=batch_timeout_ms)` and, when that
returned nothing, sleeps `batch_timeout_ms` again before the next call
(`faststream/kafka/subscriber/usecase.py`, `BatchSubscriber.get_msg`). So an idle consumer
woke up `1000 / (2 * fetch_wait_ms)` times a second — 13-19 ms of CPU per second per consumer
at 10 ms, measured, paid by every consumer whether it has work or not — and a record arriving
during the sleep waited for it. aiokafka's `getmany()` returns as soon as a record is there,
so the runtime's fetch waits there alone, up to `fetch_wait_ms`, and sleeps only when
`getmany()` came back empty early (no assignment yet, say): the poll rate stays bounded.

A fetch's records are handed on merged by record time, each partition kept in offset order
(as the gateway's reader does): session-commands reads a session's `commands` and `turns`
records from two partitions, and Kafka keeps no order between them. Partition by partition, a
backlog (a restart, a slow writer) let a turn's CompleteTurn published seconds after the
user's CancelTurn be applied first, and the stop was refused `turn_not_running`.
"""

import asyncio
import heapq
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

Fetch = Callable[[Any], Coroutine[Any, Any, tuple[Any, ...]]]


@dataclass(slots=True)
class FetchWatch:
    """Whether the consumer's position may be ahead of the records the runtime tracks.

    `getmany()` moves a partition's position past the records it hands out, and past what it
    hands out nothing for: transaction markers, aborted records. From the fetch until the
    runtime has tracked that fetch's records (`KeyOrderedConsumer.dispatch_batch`), the
    position is ahead of them; the rest of the time a position above every tracked record
    passed offsets that hold no record, and the commit may follow it.
    """

    handing_out: bool = False
    failed: bool = False
    """A `getmany()` raised (a batch aiokafka could not parse): it may have moved other
    partitions' positions past records it had drained and then dropped, so positions are no
    longer trusted in this process."""

    @property
    def positions_trusted(self) -> bool:
        return not (self.handing_out or self.failed)


def fetch_without_idle_sleep(
    max_records: int, wait_ms: int, watch: FetchWatch | None = None
) -> Fetch:
    """A `get_msg` for a FastStream batch subscriber (its consume loop calls it with the
    subscriber's `AIOKafkaConsumer`): the fetched records in record-time order (each
    partition's in offset order), or () after `wait_ms`. `watch` is told when records are
    handed out (set in the same step as aiokafka moves the positions)."""
    wait_s = wait_ms / 1000

    async def get_msg(consumer: Any) -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            fetched = await consumer.getmany(timeout_ms=wait_ms, max_records=max_records)
        except Exception:
            if watch is not None:
                watch.failed = True
            raise
        if fetched:
            if watch is not None:
                watch.handing_out = True
            return tuple(heapq.merge(*fetched.values(), key=_record_time))
        early = wait_s - (loop.time() - started)
        if early > 0:
            await asyncio.sleep(early)
        return ()

    return get_msg


def _record_time(record: Any) -> int:
    timestamp: int | None = record.timestamp
    return -1 if timestamp is None else timestamp
