"""The runtime's fetch waits for records in getmany() only: no sleep after an empty poll that
waited its time, a bounded poll rate when getmany() comes back empty at once."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.runtime import Record, RuntimeSettings, ServiceRuntime
from services.runtime.fetch_loop import FetchWatch, fetch_without_idle_sleep

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Fetched:
    """What the fetch orders by: an aiokafka ConsumerRecord's `timestamp` (ms)."""

    name: str
    timestamp: int | None


class Consumer:
    def __init__(self, answers: list[dict[str, list[Fetched]]], *, waits: bool) -> None:
        self.answers = answers
        self.waits = waits
        self.calls: list[tuple[int, int]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[Fetched]]:
        self.calls.append((timeout_ms, max_records))
        answer = self.answers.pop(0) if self.answers else {}
        if not answer and self.waits:
            await asyncio.sleep(timeout_ms / 1000)
        return answer


async def test_fetched_records_come_in_order_at_once() -> None:
    a, b, c = Fetched("a", 1), Fetched("b", 2), Fetched("c", 3)
    consumer = Consumer([{"p0": [a, b], "p1": [c]}], waits=True)
    fetch = fetch_without_idle_sleep(max_records=50, wait_ms=200)
    started = time.monotonic()
    assert await fetch(consumer) == (a, b, c)
    assert time.monotonic() - started < 0.1
    assert consumer.calls == [(200, 50)]


async def test_partitions_are_merged_by_record_time_each_kept_in_offset_order() -> None:
    # session-commands' `turns` partition fetched before its `commands` one: the CancelTurn
    # published first must come first, not after the later CompleteTurn.
    complete = Fetched("turns: CompleteTurn", 2_000)
    cancel = Fetched("commands: CancelTurn", 1_000)
    # Within a partition the offset order stands even where record times go backwards
    # (producers' clocks differ); a record without a time sorts first.
    late, early = Fetched("commands: late clock", 5_000), Fetched("commands: next", 1_500)
    untimed = Fetched("turns: no time", None)
    consumer = Consumer(
        [{"turns-0": [untimed, complete], "commands-0": [cancel, late, early]}], waits=True
    )
    fetch = fetch_without_idle_sleep(max_records=50, wait_ms=200)
    assert await fetch(consumer) == (untimed, cancel, complete, late, early)


async def test_no_sleep_after_an_empty_poll_that_waited() -> None:
    consumer = Consumer([], waits=True)
    fetch = fetch_without_idle_sleep(max_records=10, wait_ms=50)
    started = time.monotonic()
    assert await fetch(consumer) == ()
    assert time.monotonic() - started < 0.09  # FastStream's fetch would take 0.1 s


async def test_an_empty_answer_at_once_waits_out_the_rest() -> None:
    consumer = Consumer([], waits=False)
    fetch = fetch_without_idle_sleep(max_records=10, wait_ms=50)
    started = time.monotonic()
    assert await fetch(consumer) == ()
    assert time.monotonic() - started >= 0.045


def test_the_runtime_subscribers_use_it() -> None:
    runtime = ServiceRuntime(
        "svc", RuntimeSettings(), tracer_provider=TracerProvider(), configure_logs=False
    )

    @runtime.consumer("agent-runtime.commands", group_id="g")
    async def handle(record: Record) -> None:
        pass

    [subscriber] = runtime.broker.subscribers
    fetch: Any = subscriber.get_msg  # type: ignore[attr-defined]
    assert fetch.__qualname__.startswith("fetch_without_idle_sleep")


async def test_the_watch_hears_of_records_handed_out_and_of_a_failed_fetch() -> None:
    watch = FetchWatch()
    get_msg = fetch_without_idle_sleep(100, 10, watch)

    await get_msg(Consumer([{}], waits=False))
    assert watch.positions_trusted
    await get_msg(Consumer([{"p0": [Fetched("a", 1)]}], waits=False))
    assert not watch.positions_trusted  # until the runtime has tracked them
    watch.handing_out = False

    class Unparsable(Consumer):
        async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, Any]:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a batch aiokafka cannot read")

    with pytest.raises(UnicodeDecodeError):
        await get_msg(Unparsable([], waits=False))
    assert watch.failed
    assert not watch.positions_trusted
