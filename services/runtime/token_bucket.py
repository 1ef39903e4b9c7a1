"""A token bucket with reservations, shared by every rate limit of the runtime.

Why our own bucket and not aiolimiter: llm-invocation charges its token limit twice — an
estimate before the call and a correction once the real usage is known — and refunds a
reservation when the invocation is cancelled while it waits; the gateway only asks what is
available and refuses instead of waiting. A reservation bucket does both in a few lines, with
an injected clock so it is tested without sleeping.

Reservations may drive the balance below zero: a caller that asks for more than the bucket
holds waits until the debt is paid back, instead of being refused forever. Callers are served
in arrival order, because each reservation's wait includes the debt of those before it.
"""

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
