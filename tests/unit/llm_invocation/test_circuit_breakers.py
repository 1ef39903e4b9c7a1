"""Half-open probing on a fake clock: an early first trial, then a trial per interval with backoff."""

import asyncio

import pytest

from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderUnavailable
from services.llm_invocation.resilience.circuit_breakers import ProviderCircuitBreakers

pytestmark = pytest.mark.unit

PROVIDER, MODEL = "openai-compatible", "gpt-test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breakers(clock: FakeClock) -> ProviderCircuitBreakers:
    return ProviderCircuitBreakers(threshold=2, first_trial_s=1.0, ttl_s=10.0, clock=clock)


async def call(breakers: ProviderCircuitBreakers, *, provider_up: bool) -> str:
    """One guarded attempt: "ok", "failed" (the provider was called) or "fast" (it was not)."""
    try:
        async with breakers.guard(PROVIDER, MODEL):
            if not provider_up:
                raise ProviderUnavailable("500 from the provider")
    except CircuitOpen:
        return "fast"
    except ProviderUnavailable:
        return "failed"
    return "ok"


async def open_circuit(breakers: ProviderCircuitBreakers) -> None:
    assert [await call(breakers, provider_up=False) for _ in range(2)] == ["failed", "failed"]
    assert breakers.state(PROVIDER, MODEL) == "opened"


async def test_the_first_trial_comes_after_first_trial_s(
    breakers: ProviderCircuitBreakers, clock: FakeClock
) -> None:
    await open_circuit(breakers)
    assert breakers.next_trial_in(PROVIDER, MODEL) == 1.0
    clock.now += 0.9
    assert await call(breakers, provider_up=True) == "fast"
    clock.now += 0.2
    assert await call(breakers, provider_up=True) == "ok"  # the trial, and it closes
    assert breakers.state(PROVIDER, MODEL) == "closed"
    assert breakers.next_trial_in(PROVIDER, MODEL) is None


async def test_failed_trials_double_the_wait_up_to_ttl(
    breakers: ProviderCircuitBreakers, clock: FakeClock
) -> None:
    await open_circuit(breakers)
    waits = []
    for _ in range(6):
        wait = breakers.next_trial_in(PROVIDER, MODEL)
        assert wait is not None
        waits.append(wait)
        clock.now += wait - 0.01
        assert await call(breakers, provider_up=False) == "fast"  # not yet: no provider call
        clock.now += 0.01
        assert await call(breakers, provider_up=False) == "failed"  # the trial, and it fails
        assert breakers.state(PROVIDER, MODEL) == "opened"
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


async def test_recovery_is_noticed_within_one_wait_of_the_outage_end(
    breakers: ProviderCircuitBreakers, clock: FakeClock
) -> None:
    """The incident: down for 24 s, then up. A fixed 30 s TTL closed 21 s after recovery."""
    start = clock.now
    provider_up = False
    await open_circuit(breakers)
    calls_to_provider = 0
    while breakers.state(PROVIDER, MODEL) != "closed":
        clock.now += 0.1  # a call every 100 ms
        provider_up = clock.now - start >= 24.0
        outcome = await call(breakers, provider_up=provider_up)
        calls_to_provider += outcome != "fast"
    closed_after_recovery = clock.now - (start + 24.0)
    # Trials about 1, 3, 7, 15 and 25 s after opening (each a little late: calls come every
    # 100 ms): the fifth, ~1 s after the recovery, closes it.
    assert closed_after_recovery < 2.0
    assert calls_to_provider == 5  # the probes while down cost one call each


async def test_one_trial_at_a_time_the_others_fail_fast(
    breakers: ProviderCircuitBreakers, clock: FakeClock
) -> None:
    await open_circuit(breakers)
    clock.now += 1.0
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_trial() -> None:
        async with breakers.guard(PROVIDER, MODEL):
            entered.set()
            await release.wait()

    trial = asyncio.create_task(slow_trial())
    await entered.wait()
    assert breakers.state(PROVIDER, MODEL) == "half-opened"
    assert await call(breakers, provider_up=True) == "fast"
    release.set()
    await trial
    assert breakers.state(PROVIDER, MODEL) == "closed"


async def test_after_closing_the_next_opening_starts_again_at_first_trial_s(
    breakers: ProviderCircuitBreakers, clock: FakeClock
) -> None:
    await open_circuit(breakers)
    for _ in range(3):  # three failed trials: the wait grew to 8 s
        clock.now += breakers.next_trial_in(PROVIDER, MODEL) or 0
        await call(breakers, provider_up=False)
    clock.now += breakers.next_trial_in(PROVIDER, MODEL) or 0
    assert await call(breakers, provider_up=True) == "ok"
    await open_circuit(breakers)
    assert breakers.next_trial_in(PROVIDER, MODEL) == 1.0


def test_first_trial_s_is_capped_by_ttl(clock: FakeClock) -> None:
    breakers = ProviderCircuitBreakers(first_trial_s=5.0, ttl_s=0.5, clock=clock)
    assert breakers._breakers._first_trial_s == 0.5
