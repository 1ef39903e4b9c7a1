"""Request-rate and token-rate limits per provider: the runtime's token buckets with reservations
(`services/runtime/token_bucket.py`), the token limit charged on an estimate and corrected once
the real usage is known."""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.runtime.token_bucket import TokenBucket


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    burst_seconds: float = 10.0
    """Bucket capacity as seconds of rate: how much may go out at once after a quiet spell."""


class ProviderRateLimiter:
    """One per provider; shared by every invocation of the process."""

    def __init__(
        self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._requests = _bucket(config.requests_per_minute, config.burst_seconds, clock)
        self._tokens = _bucket(config.tokens_per_minute, config.burst_seconds, clock)

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait for one request slot and `estimated_tokens`; refunded if cancelled meanwhile."""
        waits = [0.0]
        if self._requests is not None:
            waits.append(self._requests.reserve(1))
        if self._tokens is not None:
            waits.append(self._tokens.reserve(estimated_tokens))
        delay = max(waits)
        if delay <= 0:
            return
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if self._requests is not None:
                self._requests.refund(1)
            if self._tokens is not None:
                self._tokens.refund(estimated_tokens)
            raise

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token reservation with the usage the provider reported."""
        if self._tokens is None or actual_tokens == estimated_tokens:
            return
        if actual_tokens > estimated_tokens:
            self._tokens.charge(actual_tokens - estimated_tokens)
        else:
            self._tokens.refund(estimated_tokens - actual_tokens)


def _bucket(
    per_minute: float | None, burst_s: float, clock: Callable[[], float]
) -> TokenBucket | None:
    if per_minute is None:
        return None
    rate = per_minute / 60.0
    return TokenBucket(rate_per_s=rate, capacity=max(1.0, rate * burst_s), clock=clock)
