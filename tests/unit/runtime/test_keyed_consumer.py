"""The key-ordered consumer against a fake Kafka consumer: ordering, commits, backpressure,
retries, dead letters, revoke and shutdown — without a broker."""

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from contracts.codec import EncodeError
from services.runtime.errors import RetryableError
from services.runtime.keyed_consumer import ConsumerOptions, Handler, KeyOrderedConsumer
from services.runtime.record import PartitionId, Record
from services.runtime.retry import Backoff
from services.runtime.telemetry.metrics import RuntimeMetrics
from services.runtime.telemetry.record_fields import record_log_fields
from tests.support.runtime.fake_consumer import FakeKafkaConsumer

pytestmark = pytest.mark.unit

P0 = PartitionId("t", 0)
P1 = PartitionId("t", 1)
FAST_BACKOFF = Backoff(initial_s=0.001, max_s=0.005)


class DeadLetters:
    def __init__(self, failures: int = 0, failure: Exception | None = None) -> None:
        self.letters: list[tuple[Record, BaseException, int]] = []
        self.calls = 0
        self._failures = failures
        self._failure = failure or ConnectionError("broker down")

    async def __call__(self, record: Record, error: BaseException, attempts: int) -> None:
        self.calls += 1
        if self._failures:
            self._failures -= 1
            raise self._failure
        self.letters.append((record, error, attempts))


def rec(key: str | None, offset: int, partition: PartitionId = P0) -> Record:
    return Record(
        topic=partition.topic,
        partition=partition.partition,
        offset=offset,
        key=None if key is None else key.encode(),
        value=b"v",
    )


def make(
    handler: Handler,
    fake: FakeKafkaConsumer | None = None,
    dead_letters: DeadLetters | None = None,
    **options: object,
) -> tuple[KeyOrderedConsumer, FakeKafkaConsumer, DeadLetters]:
    fake = fake or FakeKafkaConsumer(assigned={P0, P1})
    dead_letters = dead_letters or DeadLetters()
    opts = {"commit_interval_s": 3600.0, "backoff": FAST_BACKOFF, **options}
    consumer = KeyOrderedConsumer(
        handler,
        consumer=lambda: fake,
        to_kafka_partition=lambda p: p,
        dead_letters=dead_letters,
        options=ConsumerOptions(**opts),  # type: ignore[arg-type]
    )
    consumer.on_partitions_assigned(fake.assigned)
    return consumer, fake, dead_letters


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.001)


def gate() -> tuple[dict[int, asyncio.Event], Callable[[Record], Awaitable[None]]]:
    """A handler that blocks each offset until the test releases it."""
    events: dict[int, asyncio.Event] = defaultdict(asyncio.Event)
    started: list[int] = []

    async def handler(record: Record) -> None:
        started.append(record.offset)
        await events[record.offset].wait()

    handler.started = started  # type: ignore[attr-defined]
    return events, handler


async def test_same_key_in_order_different_keys_concurrently() -> None:
    seen: dict[bytes, list[int]] = defaultdict(list)
    running: dict[bytes, int] = defaultdict(int)
    overlap = {"same_key": 0, "max_concurrency": 0, "now": 0}
    rng = random.Random(7)

    async def handler(record: Record) -> None:
        assert record.key is not None
        running[record.key] += 1
        overlap["now"] += 1
        overlap["max_concurrency"] = max(overlap["max_concurrency"], overlap["now"])
        if running[record.key] > 1:
            overlap["same_key"] += 1
        await asyncio.sleep(rng.uniform(0, 0.003))
        seen[record.key].append(record.offset)
        running[record.key] -= 1
        overlap["now"] -= 1

    consumer, fake, _ = make(handler, max_in_flight=10_000)
    offsets: dict[bytes, list[int]] = defaultdict(list)
    for offset in range(600):
        key = f"s{rng.randrange(40)}"
        offsets[key.encode()].append(offset)
        await consumer.dispatch(rec(key, offset))
    await eventually(lambda: consumer.in_flight == 0)
    assert seen == offsets
    assert overlap["same_key"] == 0
    assert overlap["max_concurrency"] > 10
    await consumer.commit()
    assert fake.committed(P0) == 600


async def test_commit_never_passes_an_unfinished_record() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler)
    for offset in range(5):
        await consumer.dispatch(rec(f"k{offset}", offset))
    for offset in (1, 2, 3, 4):
        events[offset].set()
    await eventually(lambda: consumer.in_flight == 1)
    await consumer.commit()
    assert fake.committed(P0) == 0  # offset 0 is still running
    events[0].set()
    await eventually(lambda: consumer.in_flight == 0)
    await consumer.commit()
    assert fake.committed(P0) == 5
    assert all(set(c) <= {P0, P1} for c in fake.commits)  # always explicit offsets


async def test_at_the_bound_dispatch_holds_until_a_slot_frees() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_in_flight=2, backpressure_block_s=5)
    await consumer.dispatch(rec("a", 0))
    held = asyncio.create_task(consumer.dispatch(rec("b", 1)))
    await asyncio.sleep(0.02)
    assert not held.done()  # the fetch loop is held: no getmany() while at the bound
    events[0].set()
    await asyncio.wait_for(held, 1)
    assert not fake.paused  # a short saturation never pauses (no refetch of the buffer)
    events[1].set()


async def test_a_lasting_saturation_pauses_and_resumes_below_the_low_mark() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_in_flight=4, resume_ratio=0.5, backpressure_block_s=0.02)
    for offset in range(3):
        await consumer.dispatch(rec(f"k{offset}", offset))
    assert not fake.paused
    await asyncio.wait_for(consumer.dispatch(rec("k3", 3)), 1)
    assert fake.paused == {P0, P1}
    events[0].set()
    await eventually(lambda: consumer.in_flight == 3)
    assert fake.paused  # 3 > resume_at (2)
    events[1].set()
    await eventually(lambda: not fake.paused)
    for offset in (2, 3):
        events[offset].set()


async def test_retryable_error_retries_that_key_while_others_flow() -> None:
    attempts: dict[int, int] = defaultdict(int)
    done: list[int] = []

    async def handler(record: Record) -> None:
        attempts[record.offset] += 1
        if record.offset == 0 and attempts[0] < 4:
            raise RetryableError("mongo unavailable")
        done.append(record.offset)

    consumer, _, dead = make(handler)
    await consumer.dispatch(rec("slow", 0))
    await consumer.dispatch(rec("slow", 1))
    await consumer.dispatch(rec("other", 2))
    await eventually(lambda: consumer.in_flight == 0)
    assert attempts[0] == 4
    assert done.index(0) < done.index(1)  # the key waited for its retried head
    assert dead.letters == []


async def test_retries_exhausted_goes_to_dead_letters() -> None:
    async def handler(record: Record) -> None:
        raise RetryableError("still down")

    consumer, _, dead = make(handler, backoff=Backoff(0.001, 0.002, max_attempts=3))
    await consumer.dispatch(rec("a", 0))
    await eventually(lambda: consumer.in_flight == 0)
    assert [(r.offset, attempts) for r, _, attempts in dead.letters] == [(0, 3)]


async def test_poison_record_is_dead_lettered_and_the_partition_keeps_flowing() -> None:
    handled: list[int] = []

    async def handler(record: Record) -> None:
        if record.value == b"poison":
            raise ValueError("cannot parse")
        handled.append(record.offset)

    consumer, fake, dead = make(handler)
    await consumer.dispatch(rec("a", 0))
    await consumer.dispatch(Record("t", 0, 1, b"a", b"poison"))
    await consumer.dispatch(rec("a", 2))
    await eventually(lambda: consumer.in_flight == 0)
    assert handled == [0, 2]
    assert [(r.offset, type(e).__name__) for r, e, _ in dead.letters] == [(1, "ValueError")]
    await consumer.commit()
    assert fake.committed(P0) == 3


async def test_retry_and_dead_letter_lines_carry_the_records_log_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Written after the handler raised, outside its record's log context: the fields are given.
    async def handler(record: Record) -> None:
        raise RetryableError("still down")

    consumer, _, _ = make(handler, backoff=Backoff(0.001, 0.002, max_attempts=2))
    with caplog.at_level("WARNING", logger="services.runtime.keyed_consumer"):
        traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        headers = (("ce_turnid", b"turn-3"), ("traceparent", traceparent))
        await consumer.dispatch(Record("t", 1, 7, b"sess-9", b"v", headers))
        await eventually(lambda: consumer.in_flight == 0)
    lines = [r for r in caplog.records if "sess-9" not in r.getMessage()]
    assert [r.levelname for r in lines] == ["WARNING", "ERROR"]  # a retry, then the dead letter
    fields = ("session_id", "turn_id", "trace_id", "topic", "partition", "offset")
    trace = "0af7651916cd43dd8448eb211c80319c"  # the record's, to find its trace by
    for line in lines:
        assert [getattr(line, name, None) for name in fields] == [
            "sess-9",
            "turn-3",
            trace,
            "t",
            1,
            7,
        ]


@pytest.mark.parametrize(
    "traceparent",
    [b"garbage", b"00-00000000000000000000000000000000-b7ad6b7169203331-01", b"\xff" * 55],
)
def test_a_record_without_a_usable_traceparent_gives_no_trace_id(traceparent: bytes) -> None:
    record = Record("t", 1, 7, b"sess-9", b"v", (("traceparent", traceparent),))
    assert "trace_id" not in record_log_fields(record)


async def test_failed_dead_letter_publish_is_retried_before_the_record_counts_as_done() -> None:
    async def handler(record: Record) -> None:
        raise ValueError("bad")

    consumer, _, dead = make(handler, dead_letters=DeadLetters(failures=2))
    await consumer.dispatch(rec("a", 0))
    await eventually(lambda: consumer.in_flight == 0)
    assert len(dead.letters) == 1


async def test_a_dead_letter_that_cannot_be_encoded_is_never_retried() -> None:
    async def handler(record: Record) -> None:
        raise ValueError("bad")

    sink = DeadLetters(failures=1_000, failure=EncodeError("1300000 bytes exceeds the limit"))
    consumer, fake, _ = make(handler, dead_letters=sink)
    await consumer.dispatch(rec("a", 0))
    await consumer.dispatch(rec("a", 1))
    await eventually(lambda: consumer.in_flight == 0)
    assert sink.calls == 2  # once per record: no retry loop holding the key
    await consumer.commit()
    assert fake.committed(P0) == 2


async def test_revoke_finishes_running_work_commits_and_drops_waiting_records() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler)
    await consumer.dispatch(rec("a", 0, P0))
    await consumer.dispatch(rec("a", 1, P0))  # waits behind 0
    await consumer.dispatch(rec("b", 50, P1))
    revoke = asyncio.create_task(consumer.on_partitions_revoked([P0]))
    await asyncio.sleep(0.01)
    assert not revoke.done()  # waiting for offset 0 to finish
    events[0].set()
    await asyncio.wait_for(revoke, 2)
    assert fake.committed(P0) == 1  # 0 done; 1 was never started: the next owner gets it
    assert 1 not in handler.started  # type: ignore[attr-defined]
    await consumer.dispatch(rec("c", 2, P0))  # a late record of a revoked partition
    assert consumer.in_flight == 1  # only P1's record
    events[50].set()


async def test_revoke_drain_is_bounded() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, rebalance_drain_timeout_s=0.05)
    await consumer.dispatch(rec("a", 7, P0))
    await asyncio.wait_for(consumer.on_partitions_revoked([P0]), 2)
    assert fake.committed(P0) == 7  # not past the record still running
    events[7].set()


async def test_a_late_handler_of_a_revoked_partition_frees_its_key_when_it_finishes() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, rebalance_drain_timeout_s=0.05)
    await consumer.dispatch(rec("a", 7, P0))
    await asyncio.wait_for(consumer.on_partitions_revoked([P0]), 2)  # drain timed out
    consumer.on_partitions_assigned([P0])  # the partition comes back (scale-in)
    await consumer.dispatch(rec("a", 7, P0))  # redelivered: queued behind the late handler
    events[7].set()  # the late handler finishes; its key must not stay busy for ever
    await eventually(lambda: handler.started.count(7) == 2)  # type: ignore[attr-defined]
    await eventually(lambda: consumer.in_flight == 0)
    await consumer.commit()
    assert fake.committed(P0) == 8


async def test_stop_finishes_every_received_record_and_commits_it() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler)
    consumer.start()
    await consumer.dispatch(rec("a", 0))
    await consumer.dispatch(rec("a", 1))  # queued behind 0
    await consumer.dispatch(rec("b", 2))
    stop = asyncio.create_task(consumer.stop())
    await asyncio.sleep(0.01)
    assert fake.paused == {P0, P1}  # fetching stopped first
    await consumer.dispatch(rec("c", 3))  # arrives while stopping: ignored
    events[0].set()
    events[2].set()
    await asyncio.sleep(0.01)
    assert not stop.done()  # offset 1 (queued behind 0) is handled before stopping
    events[1].set()
    await asyncio.wait_for(stop, 2)
    assert handler.started == [0, 2, 1]  # type: ignore[attr-defined]
    assert fake.committed(P0) == 3


async def test_stop_abandons_records_waiting_for_a_retry() -> None:
    async def handler(record: Record) -> None:
        raise RetryableError("down")

    consumer, fake, dead = make(handler, backoff=Backoff(initial_s=30, max_s=30))
    await consumer.dispatch(rec("a", 0))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(consumer.stop(), 2)
    assert dead.letters == []
    assert fake.committed(P0) in (None, 0)


async def test_stop_cancels_handlers_that_outlive_the_drain_timeout() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, drain_timeout_s=0.05)
    await consumer.dispatch(rec("a", 0))
    await consumer.dispatch(rec("b", 1))
    events[1].set()
    await asyncio.wait_for(consumer.stop(), 2)
    assert fake.committed(P0) == 0


async def test_a_failed_commit_is_retried_on_the_next_commit() -> None:
    async def handler(record: Record) -> None:
        return None

    consumer, fake, _ = make(handler)
    await consumer.dispatch(rec("a", 0))
    await eventually(lambda: consumer.in_flight == 0)
    fake.fail_commits = True
    await consumer.commit()
    fake.fail_commits = False
    await consumer.commit()
    assert fake.commits == [{P0: 1}]


async def test_records_of_unassigned_partitions_are_ignored() -> None:
    async def handler(record: Record) -> None:
        raise AssertionError("must not run")

    consumer, _, _ = make(handler, fake=FakeKafkaConsumer(assigned={P1}))
    await consumer.dispatch(rec("a", 0, P0))
    assert consumer.in_flight == 0


async def test_new_assignment_is_paused_again_while_over_the_bound() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_in_flight=1, backpressure_block_s=0.01)
    await consumer.dispatch(rec("a", 0, P1))
    assert fake.paused == {P0, P1}
    await asyncio.wait_for(consumer.on_partitions_revoked([P0]), 1)
    fake.paused.clear()  # aiokafka's new assignment starts unpaused
    fake.assigned = {P0, P1}
    consumer.on_partitions_assigned([P0])
    assert fake.paused == {P0, P1}
    events[0].set()


async def test_one_busy_key_pauses_only_its_partition_until_it_drains() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_queued_per_key=4)
    for offset in range(5):
        await consumer.dispatch(rec("busy", offset, P0))
    assert fake.paused == set()  # 5 queued (1 running + 4 waiting) is at the cap
    await consumer.dispatch(rec("busy", 5, P0))
    assert fake.paused == {P0}  # P1 keeps flowing
    await consumer.dispatch(rec("other", 100, P1))
    assert fake.paused == {P0}
    events[0].set()
    events[1].set()
    await eventually(lambda: 2 in handler.started)  # type: ignore[attr-defined]
    assert fake.paused == {P0}  # 3 still waiting: above half the cap
    events[2].set()
    await eventually(lambda: not fake.paused)  # 2 waiting: resumed
    for offset in (3, 4, 5, 100):
        events[offset].set()
    await eventually(lambda: consumer.in_flight == 0)


async def test_a_saturated_consumer_takes_the_rest_of_a_fetched_batch_without_holding() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_in_flight=2, backpressure_block_s=0.02)
    batch = [rec(f"k{offset}", offset) for offset in range(6)]
    # Paused after the first hold; the other records of the fetch do not hold again each.
    await asyncio.wait_for(consumer.dispatch_batch(batch), 0.5)
    assert fake.paused == {P0, P1}
    assert consumer.in_flight == 6
    for offset in range(6):
        events[offset].set()
    await eventually(lambda: not fake.paused)


async def test_a_batch_fetched_before_a_rebalance_is_dropped_after_it() -> None:
    events, handler = gate()
    consumer, fake, _ = make(handler, max_in_flight=1, backpressure_block_s=5)
    batch = [rec("a", 10, P0), rec("b", 11, P0), rec("c", 12, P0)]
    dispatching = asyncio.create_task(consumer.dispatch_batch(batch))
    await eventually(lambda: 10 in handler.started)  # type: ignore[attr-defined]
    # P0 is revoked and assigned back while the batch waits for capacity: the new assignment
    # fetches again from the committed offset, so 11 and 12 of the old fetch must not count.
    events[10].set()
    await consumer.on_partitions_revoked([P0])
    consumer.on_partitions_assigned([P0])
    await asyncio.wait_for(dispatching, 1)
    assert consumer.in_flight == 0
    assert handler.started == [10]  # type: ignore[attr-defined]
    await consumer.dispatch_batch([rec("b", 11, P0), rec("c", 12, P0)])  # the refetch
    await eventually(lambda: handler.started == [10, 11, 12])  # type: ignore[attr-defined]
    events[11].set()
    events[12].set()
    await eventually(lambda: consumer.in_flight == 0)
    await consumer.commit()
    assert fake.committed(P0) == 13


async def test_records_the_consumer_does_not_accept_are_done_without_a_handler_call() -> None:
    events, handler = gate()
    fake = FakeKafkaConsumer(assigned={P0, P1})
    registry = CollectorRegistry()
    consumer = KeyOrderedConsumer(
        handler,
        consumer=lambda: fake,
        to_kafka_partition=lambda p: p,
        dead_letters=DeadLetters(),
        options=ConsumerOptions(commit_interval_s=3600.0, backoff=FAST_BACKOFF),
        accepts=lambda record: record.key != b"skip",
        metrics=RuntimeMetrics("svc", registry).for_consumer("g"),
    )
    consumer.on_partitions_assigned(fake.assigned)
    await consumer.dispatch_batch([rec("a", 0), rec("skip", 1), rec("a", 2), rec("skip", 3)])
    # Counted as progress (the no-progress alert reads it), not as handled.
    labels = {"service": "svc", "group": "g", "topic": "t"}
    assert registry.get_sample_value("agent_runtime_records_skipped_total", labels) == 2
    await eventually(lambda: handler.started == [0])  # type: ignore[attr-defined]
    await consumer.commit()
    assert fake.committed(P0) in (None, 0)  # 0 still runs
    events[0].set()
    events[2].set()
    await eventually(lambda: consumer.in_flight == 0)
    await consumer.commit()
    assert fake.committed(P0) == 4
    assert handler.started == [0, 2]  # type: ignore[attr-defined]
