"""When a waiting owner may take a claim over: only after a whole lease of unchanged beats
seen while MongoDB answered promptly (fake clock, in-memory store)."""

import pytest

from contracts.base import derive_id
from contracts.llm import LLMCompleted
from services.llm_invocation.claims import Claimed, InvocationClaims
from services.llm_invocation.result_store import ClaimState, Holder
from tests.support.llm_invocation.fake_ports import MemoryResults
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit

LEASE = 10.0


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedReads(MemoryResults):
    """Each read may take `read_s` of fake time and may move the holder's beat or keep a result."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__()
        self.time = time
        self.read_s: list[float] = []
        self.on_read: list[ClaimState | None] = []
        self.taken_over_at: float | None = None
        self.slow_read_ended_at: float | None = None

    async def read_claim(self, invocation_id: str) -> ClaimState:
        if self.read_s:
            took = self.read_s.pop(0)
            self.time.now += took
            if took:
                self.slow_read_ended_at = self.time.now
        if self.on_read:
            update = self.on_read.pop(0)
            if isinstance(update, Holder):
                self.claims[invocation_id] = update
            elif update is not None:
                self.kept[invocation_id] = update
        return await super().read_claim(invocation_id)

    async def take_over(self, invocation_id: str, owner: str, seen: Holder | None) -> bool:
        taken = await super().take_over(invocation_id, owner, seen)
        if taken:
            self.taken_over_at = self.time.now
        return taken


def _claims(store: MemoryResults, time: FakeTime) -> InvocationClaims:
    return InvocationClaims(
        store, lease_s=LEASE, owner_prefix="me", clock=time.clock, sleep=time.sleep
    )


async def test_an_unrenewed_claim_is_taken_over_after_one_lease() -> None:
    time = FakeTime()
    store = ScriptedReads(time)
    store.claims["inv"] = Holder("crashed#1", 7)
    started = time.now
    claimed = await _claims(store, time).acquire("inv", "s")
    assert isinstance(claimed, Claimed)
    assert store.taken_over_at is not None
    assert LEASE <= store.taken_over_at - started <= LEASE + 1.5


async def test_a_slow_read_during_a_mongo_outage_restarts_the_observation() -> None:
    time = FakeTime()
    store = ScriptedReads(time)
    store.claims["inv"] = Holder("alive#1", 3)
    store.read_s = [0.0, 0.0, 30.0]  # a read waits 30 s for MongoDB to come back, beat unchanged
    claimed = await _claims(store, time).acquire("inv", "s")
    assert isinstance(claimed, Claimed)
    assert store.slow_read_ended_at is not None
    assert store.taken_over_at is not None
    # Not at once although the beat is 30 s old: a whole lease after MongoDB answered again.
    assert store.taken_over_at >= store.slow_read_ended_at + LEASE


async def test_a_renewed_claim_is_never_taken_over_and_its_result_is_returned() -> None:
    time = FakeTime()
    store = ScriptedReads(time)
    store.claims["inv"] = Holder("alive#1", 0)
    request = llm_request()
    result = LLMCompleted(
        id=derive_id("llm-result", "inv"),
        session_id=request.session_id,
        tenant_id=request.tenant_id,
        invocation_id="inv",
        turn_id=request.turn_id,
        step=0,
        agent=request.agent,
        content="from the holder",
        provider="p",
        model="m",
        finish_reason="stop",
    )
    # The holder beats every 3 s (reads are 1 s apart) for 60 s, then keeps its result.
    store.on_read = [Holder("alive#1", i // 3) if i % 3 else None for i in range(1, 61)]
    store.on_read.append(result)
    assert await _claims(store, time).acquire("inv", "s") == result
    assert store.taken_over_at is None


async def test_a_released_claim_is_claimed_at_once() -> None:
    time = FakeTime()
    store = ScriptedReads(time)
    claimed = await _claims(store, time).acquire("inv", "s")
    assert isinstance(claimed, Claimed)
    assert store.claims["inv"] == Holder(claimed.owner)
    assert time.now == 1000.0
