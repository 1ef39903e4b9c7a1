"""Request-rate and token-rate limits per provider: token buckets with reservations.

Why our own bucket and not aiolimiter: the token limit is charged twice — an estimate before
the call (prompt + expected completion) and a correction once the real usage is known — and a
reservation can be refunded when the invocation is cancelled while it waits. A reservation
bucket does that in a few lines, with an injected clock so it is tested without sleeping.

Reservations may drive the balance below zero: a caller that asks for more than the bucket
holds waits until the debt is paid back, instead of being refused forever. Callers are served
in arrival order, because each reservation's wait includes the debt of those before it.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    capacity: float
    clock: Callable[[], float] = time.monotonic
    _balance: float | None = None
    _updated: float = 0.0

    def reserve(self, amount: float) -> float:
        """Take `amount` now; returns how long the caller must wait before using it."""
        balance = self._refill()
        self._balance = balance - amount
        return 0.0 if self._balance >= 0 else -self._balance / self.rate_per_s

    def refund(self, amount: float) -> None:
        """Give back (part of) a reservation: cancelled, or the real cost was lower."""
        self._balance = min(self.capacity, self._refill() + amount)

    def charge(self, amount: float) -> None:
        """Take more after the fact (the real cost was higher); later callers wait for it."""
        self._balance = self._refill() - amount

    def available(self) -> float:
        """What may be taken now without waiting (negative while a debt is paid back)."""
        return self._refill()

    def _refill(self) -> float:
        now = self.clock()
        if self._balance is None:
            self._balance, self._updated = self.capacity, now
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._balance = min(self.capacity, self._balance + elapsed * self.rate_per_s)
        return self._balance


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
