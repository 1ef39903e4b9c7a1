"""Token buckets for request and token rates, with a fake clock."""

import asyncio

import pytest

from services.llm_invocation.resilience.rate_limits import ProviderRateLimiter, RateLimitConfig
from services.runtime.token_bucket import TokenBucket

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_serves_its_capacity_at_once_then_paces() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2.0, capacity=4.0, clock=clock)
    assert [bucket.reserve(1) for _ in range(4)] == [0.0] * 4
    assert bucket.reserve(1) == pytest.approx(0.5)
    assert bucket.reserve(1) == pytest.approx(1.0)  # behind the one before: arrival order


def test_the_bucket_refills_with_time_up_to_its_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=1.0, capacity=2.0, clock=clock)
    bucket.reserve(2)
    clock.now = 100.0
    assert bucket.reserve(2) == 0.0
    assert bucket.reserve(1) == pytest.approx(1.0)


def test_a_reservation_larger_than_the_capacity_waits_instead_of_failing() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=10.0, capacity=10.0, clock=clock)
    assert bucket.reserve(30) == pytest.approx(2.0)


def test_refund_and_charge_correct_the_balance() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=1.0, capacity=10.0, clock=clock)
    bucket.reserve(10)
    bucket.refund(4)
    assert bucket.reserve(4) == 0.0
    bucket.charge(5)
    assert bucket.reserve(1) == pytest.approx(6.0)


async def test_unlimited_by_default() -> None:
    limiter = ProviderRateLimiter(RateLimitConfig())
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire(10_000) for _ in range(100))), 1)


async def test_request_rate_makes_later_callers_wait() -> None:
    clock = Clock()
    limiter = ProviderRateLimiter(
        RateLimitConfig(requests_per_minute=60, burst_seconds=2), clock=clock
    )
    await asyncio.wait_for(limiter.acquire(1), 0.1)
    await asyncio.wait_for(limiter.acquire(1), 0.1)
    waiting = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the third must wait ~1 s for its slot
    waiting.cancel()


async def test_a_cancelled_wait_gives_its_reservation_back() -> None:
    clock = Clock()
    limiter = ProviderRateLimiter(
        RateLimitConfig(tokens_per_minute=600, burst_seconds=1), clock=clock
    )
    waiting = asyncio.create_task(limiter.acquire(100))  # 10 tokens/s, bucket of 10: ~9 s
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(limiter.acquire(10), 0.1)  # the bucket is full again


async def test_settle_charges_the_real_usage() -> None:
    clock = Clock()
    limiter = ProviderRateLimiter(
        RateLimitConfig(tokens_per_minute=600, burst_seconds=1), clock=clock
    )
    await limiter.acquire(5)
    limiter.settle(estimated_tokens=5, actual_tokens=25)  # 20 more than reserved: in debt
    waiting = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    waiting.cancel()
