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

    async def __call__(self, delta: LLMTokenDelta) -> None:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.sent.append(delta)


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


async def test_a_failed_publish_surfaces_on_the_next_push_or_at_flush() -> None:
    broker = Broker()
    broker.fail = OSError("broker down")
    stream = DeltaStream(llm_request(), broker)
    await stream.push("a")
    with pytest.raises(OSError, match="broker down"):
        await stream.flush()
    with pytest.raises(OSError, match="broker down"):
        await stream.push("b")


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
