"""The key-ordered concurrent consumer: ordering, commits, backpressure, rebalance, shutdown.

Records arrive in the batches the Kafka consumer fetched (`dispatch_batch`, one call per
`getmany()`), or one by one (`dispatch`). Each goes into its key's FIFO queue; one task per busy key handles the key's records in order, so different sessions run
concurrently while one session's records never overlap. Offsets are committed per partition
only up to the lowest unfinished record (`OffsetTracker`), with explicit
`consumer.commit({tp: offset})` — never a bare `commit()`, which would commit the fetch
position of every partition, past records still in flight.

The Kafka client is reached through `ConsumerPort` so this module is tested without a broker.
See docs/runtime.md for the full story.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.codec import EncodeError
from services.runtime.consumer_metrics import ConsumerMetrics, NoMetrics
from services.runtime.errors import RetryableError
from services.runtime.fetch_loop import FetchWatch
from services.runtime.key_scheduler import KeyScheduler, OrderingKey, ordering_key
from services.runtime.offset_tracker import OffsetOrderError, OffsetTracker
from services.runtime.record import PartitionId, Record
from services.runtime.retry import Backoff
from services.runtime.telemetry.record_fields import record_log_fields

log = logging.getLogger(__name__)

Handler = Callable[[Record], Awaitable[None]]
"""Return normally: done. Raise `RetryableError`: retried. Raise anything else: dead letter."""

Accepts = Callable[[Record], bool]
"""False: the handler would do nothing with this record (told from its headers, say): it counts
as done at once, without a key task, a span or a handler call."""


class DeadLetterSink(Protocol):
    async def __call__(self, record: Record, error: BaseException, attempts: int) -> None:
        """Durably publish a dead letter for `record` (raise if it could not)."""


class ConsumerPort(Protocol):
    """The part of `aiokafka.AIOKafkaConsumer` the runtime drives (`Any`: no stubs)."""

    def assignment(self) -> set[Any]: ...
    def pause(self, *partitions: Any) -> None: ...
    def resume(self, *partitions: Any) -> None: ...
    async def commit(self, offsets: dict[Any, int]) -> None: ...
    def highwater(self, partition: Any) -> int | None: ...
    async def position(self, partition: Any) -> int: ...


ConsumerProvider = Callable[[], ConsumerPort | None]
ToKafkaPartition = Callable[[PartitionId], Any]


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    max_in_flight: int = 256
    resume_ratio: float = 0.75
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 20.0
    rebalance_drain_timeout_s: float = 10.0
    backpressure_block_s: float = 5.0
    max_queued_per_key: int = 64
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def resume_at(self) -> int:
        return max(0, min(self.max_in_flight - 1, int(self.max_in_flight * self.resume_ratio)))


_POSITION_WAIT_S = 1.0


class _Abandoned(Exception):
    """The consumer is stopping while this record waits to be retried: leave it uncommitted."""


class KeyOrderedConsumer:
    def __init__(
        self,
        handler: Handler,
        *,
        consumer: ConsumerProvider,
        to_kafka_partition: ToKafkaPartition,
        dead_letters: DeadLetterSink,
        options: ConsumerOptions = ConsumerOptions(),
        metrics: ConsumerMetrics | None = None,
        name: str = "consumer",
        accepts: Accepts | None = None,
    ) -> None:
        self._handler = handler
        self._accepts = accepts
        self._consumer = consumer
        self._to_kafka = to_kafka_partition
        self._dead_letters = dead_letters
        self._options = options
        self._metrics: ConsumerMetrics = metrics or NoMetrics()
        self.name = name

        self._tracker = OffsetTracker()
        self._scheduler = KeyScheduler()
        self._workers: dict[OrderingKey, asyncio.Task[None]] = {}
        self._running: dict[PartitionId, int] = {}  # records being handled, per partition
        self._progress = asyncio.Event()  # set whenever a record finishes
        self._stopping = asyncio.Event()
        self._revoking: set[PartitionId] = set()
        self._assigned: set[PartitionId] = set()
        self._assignments = 0  # grows with every revoke and assign: see `dispatch_batch`
        self._paused_partitions: set[PartitionId] = set()
        self._saturated = False  # the bound held for backpressure_block_s: all paused
        self._hot_keys: dict[OrderingKey, set[PartitionId]] = {}
        self._commit_lock = asyncio.Lock()
        self._commit_task: asyncio.Task[None] | None = None
        self.fetch_watch = FetchWatch()
        """Told by the fetch loop when a fetch's records are handed out (fetch_loop.py)."""

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._commit_task is None:
            self._commit_task = asyncio.create_task(self._commit_loop(), name=f"{self.name}-commit")

    async def stop(self) -> None:
        """Stop fetching, finish every record already received (bounded), commit. Idempotent.

        Queued records are finished too, not only running ones: a record finished above an
        unfinished one of its partition could not be committed and would run again after the
        restart. Records waiting for a retry are abandoned at once (uncommitted).
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._sync_pauses()  # stop fetching
        deadline = time.monotonic() + self._options.drain_timeout_s
        while self._workers and time.monotonic() < deadline:
            await self._wait_progress(deadline)
        leftover = list(self._workers.values())
        for task in leftover:
            task.cancel()  # their records stay uncommitted and are redelivered
        if leftover:
            log.warning("%s: drain timed out; %d handlers cancelled", self.name, len(leftover))
            await asyncio.gather(*leftover, return_exceptions=True)
        if self._commit_task is not None:
            self._commit_task.cancel()
            await asyncio.gather(self._commit_task, return_exceptions=True)
        await self.commit()

    # ------------------------------------------------------------------ intake

    async def dispatch_batch(self, records: Iterable[Record]) -> None:
        """Accept the records of one fetch, in their order (see `dispatch`).

        A fetch belongs to the assignment it was made under: once a rebalance happened while
        the batch waits for capacity, its remaining records are dropped, untracked, because the
        new assignment fetches again from the committed offset. (A partition revoked and
        assigned back in the meantime would otherwise take stale, higher offsets first and
        refuse the refetched lower ones as duplicates.)
        """
        assignment = self._assignments
        try:
            for record in records:
                if self._assignments != assignment:
                    return
                await self.dispatch(record)
        finally:
            # Tracked, or refused or dropped for a rebalance (which resets the positions).
            self.fetch_watch.handing_out = False

    async def dispatch(self, record: Record) -> None:
        """Accept one fetched record. Returns at once; the handler runs in a key task."""
        partition = record.partition_id
        if (
            self._stopping.is_set()
            or partition in self._revoking
            # A record fetched before its partition was revoked. aiokafka calls
            # on_partitions_assigned before the first fetch of a new assignment can complete,
            # so a record of a partition we own is never refused here.
            or partition not in self._assigned
        ):
            return  # not tracked, so never committed: the next owner or run handles it
        try:
            self._tracker.track(partition, record.offset)
        except OffsetOrderError:
            log.debug("%s: duplicate fetch of %s@%d ignored", self.name, partition, record.offset)
            return
        if self._accepts is not None and not self._accepts(record):
            # Finished out of turn: it has no effect, and commits stop at the lowest
            # unfinished offset all the same.
            self._tracker.finish(partition, record.offset)
            self._metrics.skipped(record)  # progress too: the no-progress alert reads it
            return
        key = ordering_key(record)
        if self._scheduler.submit(record):
            self._start_key(key, record)
        else:
            self._note_key_depth(key, partition)
        if self.in_flight >= self._options.max_in_flight:
            await self._wait_for_capacity()

    def _start_key(self, key: OrderingKey, record: Record) -> None:
        self._workers[key] = asyncio.create_task(self._run_key(key, record))

    async def _run_key(self, key: OrderingKey, record: Record | None) -> None:
        try:
            while record is not None:
                partition = record.partition_id
                self._running[partition] = self._running.get(partition, 0) + 1
                try:
                    finished = await self._handle(record)
                finally:
                    # A late handler of a revoked partition: the revoke forgot the count.
                    if self._running.get(partition, 0) > 0:
                        self._running[partition] -= 1
                self._progress.set()
                if not finished:  # abandoned at shutdown: it and those behind it stay unread
                    self._scheduler.release(key)
                    return
                self._tracker.finish(partition, record.offset)
                self._apply_backpressure()
                record = self._scheduler.complete(key)
                self._cool_key(key)
        finally:
            self._workers.pop(key, None)
            self._progress.set()

    # ---------------------------------------------------------------- handling

    async def _handle(self, record: Record) -> bool:
        """Handle until done (True) or abandoned at shutdown (False)."""
        attempts = 0
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                await self._handler(record)
            except RetryableError as error:
                self._metrics.failed(record, error, retryable=True)
                if not self._options.backoff.exhausted(attempts):
                    log.warning(
                        "%s: retryable failure on %s@%d (attempt %d): %s",
                        self.name,
                        record.partition_id,
                        record.offset,
                        attempts,
                        error,
                        extra=record_log_fields(record),
                    )
                    if not await self._sleep_backoff(attempts):
                        return False
                    continue
                return await self._dead_letter(record, error, attempts)
            except Exception as error:
                self._metrics.failed(record, error, retryable=False)
                return await self._dead_letter(record, error, attempts)
            else:
                self._metrics.processed(record, time.perf_counter() - started)
                return True

    async def _dead_letter(self, record: Record, error: BaseException, attempts: int) -> bool:
        log.error(
            "%s: dead-lettering %s@%d after %d attempt(s): %s: %s",
            self.name,
            record.partition_id,
            record.offset,
            attempts,
            type(error).__name__,
            error,
            extra=record_log_fields(record),
        )
        publish_attempts = 0
        while True:
            publish_attempts += 1
            try:
                await self._dead_letters(record, error, attempts)
            except EncodeError:
                # Retrying cannot make it smaller: it would block the key and pin the
                # partition's commits for good. (The runtime's sink cuts every dead letter to
                # fit, so this is a sink's bug, said loudly, not a loop.)
                log.exception(
                    "%s: the dead letter of %s@%d cannot be encoded; record skipped",
                    self.name,
                    record.partition_id,
                    record.offset,
                    extra=record_log_fields(record),
                )
                return True
            except Exception:
                # The record only counts as done once its dead letter is durable.
                log.exception(
                    "%s: dead-letter publish failed", self.name, extra=record_log_fields(record)
                )
                if not await self._sleep_backoff(publish_attempts):
                    return False
            else:
                self._metrics.dead_lettered(record)
                return True

    async def _sleep_backoff(self, attempts: int) -> bool:
        """Wait before the next attempt; False when the consumer is stopping instead."""
        try:
            await asyncio.wait_for(self._stopping.wait(), self._options.backoff.delay(attempts))
        except TimeoutError:
            return True
        return False

    # ----------------------------------------------------------------- commits

    async def commit(self, partitions: Iterable[PartitionId] | None = None) -> None:
        """Commit the contiguous finished prefix of each (given) assigned partition."""
        consumer = self._consumer()
        if consumer is None:
            return
        async with self._commit_lock:
            if not self._stopping.is_set():  # stopping: records are refused, not tracked
                await self._pass_recordless_offsets(consumer)
            offsets = self._tracker.to_commit()
            if partitions is not None:
                wanted = set(partitions)
                offsets = {p: o for p, o in offsets.items() if p in wanted}
            offsets = {p: o for p, o in offsets.items() if p in self._assigned}
            if offsets:
                try:
                    await consumer.commit({self._to_kafka(p): o for p, o in offsets.items()})
                except Exception as error:
                    # Typically CommitFailedError during a rebalance; the revoke callback
                    # commits again, and anything uncommitted is merely redelivered.
                    log.warning("%s: commit of %s failed: %r", self.name, offsets, error)
                    return
                self._tracker.mark_committed(offsets)
            for partition in self._tracker.partitions:
                self._metrics.commit_lag(partition, self._tracker.commit_lag(partition))
            self._report_broker_lag(consumer)
            # Gauges on the commit tick, not per record: a scrape sees them at most one commit
            # interval old.
            self._report_gauges()

    async def _pass_recordless_offsets(self, consumer: ConsumerPort) -> None:
        """Move the commit of an idle partition up to the consumer's position when the
        position passed offsets that hold no record for it: a transaction's commit or abort
        marker, aborted records (an upstream writing `commands` in transactions). Otherwise
        the group stayed one offset short of the log end after each transaction, its lag
        reported 1 for good and the no-progress alert fired on a quiet partition."""
        watch = self.fetch_watch
        if not watch.positions_trusted:
            return
        behind: list[PartitionId] = []
        for partition in self._assigned - self._revoking:
            if self._tracker.in_flight(partition):
                continue
            try:
                highwater = consumer.highwater(self._to_kafka(partition))
            except AssertionError:  # aiokafka: no longer assigned (a rebalance is under way)
                continue
            done = self._tracker.committable(partition)
            if highwater is not None and (done is None or highwater > done):
                behind.append(partition)
        positions: dict[PartitionId, int] = {}
        for partition in behind:
            try:
                # Immediate unless the position is being reset (a new assignment reading its
                # committed offset): then not worth holding the commit lock for.
                positions[partition] = await asyncio.wait_for(
                    consumer.position(self._to_kafka(partition)), _POSITION_WAIT_S
                )
            except Exception:  # not assigned any more, or no position yet: the next tick
                return
        # A fetch that handed records out meanwhile moved a position ahead of them.
        if not watch.positions_trusted or self._stopping.is_set():
            return
        for partition, position in positions.items():
            if partition in self._assigned and partition not in self._revoking:
                self._tracker.pass_to(partition, position)

    def _report_broker_lag(self, consumer: ConsumerPort) -> None:
        """Lag per partition: the broker's high-water mark, as the consumer's last fetch
        response reported it (no request of its own), minus the offset up to which the group
        is done (the committable one: records in flight still count as lag). A partition with
        no record received since its assignment has no done offset here: it is left out
        rather than reported from a guess. Runs on the commit tick, never per record."""
        for partition in self._assigned - self._revoking:
            try:
                highwater = consumer.highwater(self._to_kafka(partition))
            except AssertionError:  # aiokafka: no longer assigned (a rebalance is under way)
                continue
            done = self._tracker.committable(partition)
            if highwater is None or done is None:
                continue  # nothing fetched or received yet: no figure rather than a wrong one
            self._metrics.consumer_lag(partition, max(0, highwater - done))

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._options.commit_interval_s)
            await self.commit()

    # --------------------------------------------------------------- rebalance

    async def on_partitions_revoked(self, revoked: Iterable[PartitionId]) -> None:
        """Finish running records of `revoked` (bounded), commit them, then let go."""
        partitions = set(revoked) & self._assigned
        if not partitions:
            return
        self._assignments += 1
        self._revoking |= partitions
        self._scheduler.drop_waiting(partitions)  # not started: the next owner handles them
        deadline = time.monotonic() + self._options.rebalance_drain_timeout_s
        while any(self._running.get(p, 0) for p in partitions) and time.monotonic() < deadline:
            await self._wait_progress(deadline)
        if any(self._running.get(p, 0) for p in partitions):
            # They keep running; their finish is ignored (tracker forgot the partition) and the
            # next owner handles them again: idempotent effects make that a duplicate, no loss.
            log.warning(
                "%s: revoke drain timed out for %s", self.name, sorted(map(str, partitions))
            )
        await self.commit(partitions)
        for partition in partitions:
            self._tracker.forget(partition)
            self._running.pop(partition, None)
            self._metrics.partition_revoked(partition)
        self._assigned -= partitions
        self._revoking -= partitions
        self._paused_partitions -= partitions
        for parts in self._hot_keys.values():
            parts -= partitions
        self._apply_backpressure()
        self._report_gauges()

    def on_partitions_assigned(self, assigned: Iterable[PartitionId]) -> None:
        self._assignments += 1
        self._assigned |= set(assigned)
        self._paused_partitions.clear()  # aiokafka starts every new assignment unpaused
        self._sync_pauses()

    # ------------------------------------------------------------ backpressure

    async def _wait_for_capacity(self) -> None:
        """At the bound: first hold the fetch loop, then pause the partitions.

        Holding `dispatch` stops FastStream's loop from calling `getmany()`, and aiokafka keeps
        its prefetched records: no refetch when a slot frees a moment later. But aiokafka
        counts time outside `getmany()` against max.poll.interval.ms and would leave the group,
        so a saturation that lasts (a dependency down, records retrying) pauses every
        partition instead and returns; `getmany()` then waits without fetching, and
        `_apply_backpressure` resumes once in-flight drops to `resume_at`.
        """
        if self._saturated:
            # Already paused: the rest of a fetched batch is taken over the bound (by at most
            # one batch) instead of holding the fetch loop once more per record.
            return
        deadline = time.monotonic() + self._options.backpressure_block_s
        while (
            self.in_flight >= self._options.max_in_flight
            and not self._stopping.is_set()
            and time.monotonic() < deadline
        ):
            await self._wait_progress(deadline)
        if self.in_flight >= self._options.max_in_flight and not self._stopping.is_set():
            log.info("%s: %d records in flight, pausing partitions", self.name, self.in_flight)
            self._saturated = True
            self._sync_pauses()

    def _note_key_depth(self, key: OrderingKey, partition: PartitionId) -> None:
        """One busy session must not fill the whole window: past `max_queued_per_key` records
        waiting for one key, stop fetching that key's partition (other partitions flow)."""
        waiting = self._scheduler.depth(key) - 1
        if waiting > self._options.max_queued_per_key:
            hot = self._hot_keys.setdefault(key, set())
            if partition not in hot:
                hot.add(partition)
                self._sync_pauses()

    def _cool_key(self, key: OrderingKey) -> None:
        waiting = self._scheduler.depth(key) - 1
        if key in self._hot_keys and waiting <= self._options.max_queued_per_key // 2:
            del self._hot_keys[key]
            self._sync_pauses()

    def _apply_backpressure(self) -> None:
        if self._saturated and self.in_flight <= self._options.resume_at:
            self._saturated = False
            self._sync_pauses()

    def _sync_pauses(self) -> None:
        """Make the consumer's paused partitions what the current state calls for."""
        consumer = self._consumer()
        if consumer is None:
            return
        if self._stopping.is_set() or self._saturated:
            desired = set(self._assigned)
        else:
            desired = {p for parts in self._hot_keys.values() for p in parts} & self._assigned
        to_pause = desired - self._paused_partitions
        to_resume = (self._paused_partitions - desired) & self._assigned
        if to_pause:
            consumer.pause(*(self._to_kafka(p) for p in to_pause))
        if to_resume:
            consumer.resume(*(self._to_kafka(p) for p in to_resume))
        self._paused_partitions = desired

    # ------------------------------------------------------------------- state

    async def _wait_progress(self, deadline: float) -> None:
        self._progress.clear()
        remaining = deadline - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    def _report_gauges(self) -> None:
        self._metrics.gauges(
            in_flight=self.in_flight,
            max_key_depth=self._scheduler.max_depth(),
            active_keys=self._scheduler.active_keys,
        )

    @property
    def in_flight(self) -> int:
        return self._tracker.total_in_flight

    @property
    def paused(self) -> bool:
        return bool(self._paused_partitions)

    @property
    def has_assignment(self) -> bool:
        return bool(self._assigned)

    @property
    def assigned_partitions(self) -> frozenset[PartitionId]:
        return frozenset(self._assigned)
