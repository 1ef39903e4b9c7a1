"""Per-API-key request limits: the runtime's token bucket, refusing instead of waiting.

The bucket is the runtime's `TokenBucket` (one implementation of the algorithm in the
repository). A request takes one token; when none is left the reservation is refunded and the
request answers 429 with `Retry-After` (seconds until a token is back). Buckets live in the
process: with N gateway replicas behind a load balancer a key gets up to N times the rate;
docs/gateway.md says how to size it.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.runtime.token_bucket import TokenBucket


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    """Seconds until the bucket is full again."""
    retry_after_s: int
    """Seconds until one request is allowed again (0 when allowed)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


_SWEEP_ABOVE = 10_000
"""Buckets kept before full ones are forgotten (a sweep walks them all)."""


class KeyRateLimiter:
    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate_per_s = per_minute / 60.0
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._sweep_at = _SWEEP_ABOVE

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def check(self, key: str) -> RateDecision:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_at:
                self._sweep()
            bucket = TokenBucket(self._rate_per_s, float(self._burst), clock=self._clock)
            self._buckets[key] = bucket
        wait = bucket.reserve(1)
        if wait > 0:
            bucket.refund(1)
        available = bucket.available()
        return RateDecision(
            allowed=wait <= 0,
            limit=self._burst,
            remaining=max(0, math.floor(available)),
            reset_s=math.ceil(max(0.0, self._burst - available) / self._rate_per_s),
            retry_after_s=max(1, math.ceil(wait)) if wait > 0 else 0,
        )

    def _sweep(self) -> None:
        """Forget the buckets that are full again: one is the same as a new bucket. With JWTs a
        bucket is made per (tenant, subject), so without this the map only ever grew. The next
        sweep waits until the map has doubled, so a sweep costs O(1) per new key."""
        full = float(self._burst)
        self._buckets = {k: b for k, b in self._buckets.items() if b.available() < full}
        self._sweep_at = max(_SWEEP_ABOVE, 2 * len(self._buckets))
