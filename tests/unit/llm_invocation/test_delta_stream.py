"""Numbered deltas: no gaps, nothing lost, coalesced while the broker is busy."""

import asyncio

import pytest

from contracts.base import derive_id
from contracts.limits import MAX_DELTA_LENGTH
from contracts.llm import LLMTokenDelta
from services.llm_invocation.delta_stream import DeltaStream
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit


class Broker:
    def __init__(self) -> None:
        self.sent: list[LLMTokenDelta] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.changed = asyncio.Condition()

    async def __call__(self, delta: LLMTokenDelta) -> None:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.sent.append(delta)
        async with self.changed:
            self.changed.notify_all()

    async def until_sent(self, count: int) -> None:
        async with asyncio.timeout(2), self.changed:
            await self.changed.wait_for(lambda: len(self.sent) >= count)


async def test_a_fast_broker_gets_one_delta_per_chunk() -> None:
    broker = Broker()
    request = llm_request()
    stream = DeltaStream(request, broker)
    for chunk in ("a", "b", "c"):
        await stream.push(chunk)
        await asyncio.sleep(0)  # the broker acknowledges before the next chunk arrives
    await stream.flush()
    assert [d.delta for d in broker.sent] == ["a", "b", "c"]
    assert [d.seq for d in broker.sent] == [0, 1, 2]
    assert [d.id for d in broker.sent] == [
        derive_id("delta", request.invocation_id, i) for i in range(3)
    ]


async def test_text_that_arrives_during_a_publish_is_coalesced() -> None:
    broker = Broker()
    broker.gate.clear()
    stream = DeltaStream(llm_request(), broker)
    await stream.push("first ")
    await asyncio.sleep(0)  # the first publish is in flight, waiting for its ack
    for chunk in ("sec", "ond ", "third"):
        await stream.push(chunk)
    broker.gate.set()
    await stream.flush()
    assert [d.delta for d in broker.sent] == ["first ", "second third"]
    assert [d.seq for d in broker.sent] == [0, 1]
    assert stream.published == 2


async def test_long_text_is_split_within_the_contract_limit() -> None:
    broker = Broker()
    stream = DeltaStream(llm_request(), broker)
    await stream.push("z" * (MAX_DELTA_LENGTH + 5))
    await stream.flush()
    assert [len(d.delta) for d in broker.sent] == [MAX_DELTA_LENGTH, 5]


async def test_a_failed_publish_never_stops_the_stream_and_flush_resends_from_the_failed_delta() -> (
    None
):
    broker = Broker()
    broker.fail = OSError("broker down")
    request = llm_request()
    stream = DeltaStream(request, broker, retry_after_s=3600)
    await stream.push("a")
    await asyncio.sleep(0)  # the first publish fails in the background
    await stream.push("b")  # never raises: the call goes on, its text is kept
    await stream.push("c")
    with pytest.raises(OSError, match="broker down"):
        await stream.flush()
    assert broker.sent == []
    broker.fail = None
    await stream.flush()  # retried: the failed delta as it was, then the rest
    assert [(d.seq, d.delta) for d in broker.sent] == [(0, "a"), (1, "bc")]
    assert [d.id for d in broker.sent] == [
        derive_id("delta", request.invocation_id, i) for i in range(2)
    ]
    assert stream.published == 2


async def test_after_a_failure_a_later_push_tries_again_mid_stream() -> None:
    broker = Broker()
    broker.fail = OSError("broker down")
    stream = DeltaStream(llm_request(), broker, retry_after_s=0.05)
    await stream.push("a")
    await asyncio.sleep(0)
    broker.fail = None
    await stream.push("b")  # too soon: only queued
    await asyncio.sleep(0.01)
    assert broker.sent == []
    await asyncio.sleep(0.06)
    await stream.push("c")  # the broker is back: the kept text goes out without waiting
    await asyncio.sleep(0.01)
    assert [(d.seq, d.delta) for d in broker.sent] == [(0, "a"), (1, "bc")]
    await stream.flush()


async def test_cancel_stops_publishing() -> None:
    broker = Broker()
    broker.gate.clear()
    stream = DeltaStream(llm_request(), broker)
    await stream.push("a")
    await asyncio.sleep(0)
    await stream.cancel()
    broker.gate.set()
    await asyncio.sleep(0)
    assert broker.sent == []


async def test_text_within_the_interval_joins_the_next_delta_and_flush_does_not_wait() -> None:
    broker = Broker()
    stream = DeltaStream(llm_request(), broker, interval_s=3600)
    await stream.push("first ")  # the first delta goes at once: time to first token unchanged
    await broker.until_sent(1)
    for chunk in ("sec", "ond ", "third"):
        await stream.push(chunk)
        await asyncio.sleep(0)  # the broker is idle, but the interval has not passed
    assert [d.delta for d in broker.sent] == ["first "]
    async with asyncio.timeout(2):  # the end of the answer is not held back by the interval
        await stream.flush()
    assert [(d.seq, d.delta) for d in broker.sent] == [(0, "first "), (1, "second third")]


async def test_text_after_the_interval_goes_as_its_own_delta() -> None:
    broker = Broker()
    stream = DeltaStream(llm_request(), broker, interval_s=0.05)
    await stream.push("a")
    await broker.until_sent(1)
    await stream.push("b")  # within the interval, the broker idle: held for the interval
    await asyncio.sleep(0)  # without pacing, "b" would go out alone here
    await stream.push("c")
    await broker.until_sent(2)
    await asyncio.sleep(0.06)  # a slow model: the next chunk comes after the interval
    await stream.push("d")
    await broker.until_sent(3)
    await stream.flush()
    assert [(d.seq, d.delta) for d in broker.sent] == [(0, "a"), (1, "bc"), (2, "d")]
