"""Per-key token buckets: a burst, then 429 with Retry-After, refilled with time."""

from services.gateway.rate_limit import KeyRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_retry_after_then_refilled() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(60, 3, clock=clock)
    decisions = [limiter.check("k") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1].headers()
    assert refused["Retry-After"] == "1"
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert "Retry-After" not in decisions[0].headers()
    clock.now += 1.0  # 60/min: one token back per second
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed


def test_keys_do_not_share_a_bucket() -> None:
    limiter = KeyRateLimiter(60, 1, clock=Clock())
    assert limiter.check("a").allowed
    assert not limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_a_refused_request_costs_nothing() -> None:
    clock = Clock()
    limiter = KeyRateLimiter(60, 1, clock=clock)
    limiter.check("k")
    for _ in range(10):
        assert not limiter.check("k").allowed
    clock.now += 1.0
    assert limiter.check("k").allowed


def test_full_buckets_are_forgotten_so_many_callers_do_not_grow_the_map_for_ever() -> None:
    """One bucket per API key, but per (tenant, subject) with JWTs: a replica that has seen
    many subjects keeps only the buckets that still differ from a new one."""
    clock = Clock()
    limiter = KeyRateLimiter(60, 2, clock=clock)
    for caller in range(25_000):
        limiter.check(f"sub-{caller}")
        clock.now += 0.01
    busy = limiter.check("busy")
    assert busy.allowed
    assert limiter.bucket_count < 12_000
    # A caller still paying for its burst keeps its bucket (and its limit).
    clock.now += 0.001
    assert limiter.check("busy").allowed
    assert not limiter.check("busy").allowed
