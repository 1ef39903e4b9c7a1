"""Exponential backoff with equal jitter for retryable handler failures."""

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.1
    max_s: float = 30.0
    max_attempts: int | None = None  # None: retry until it works or the process stops

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Sleep before attempt `attempt + 1` (attempt counts from 1). Equal jitter (a
        random delay between half the ceiling and the ceiling) spreads the retries of many
        sessions failing on the same outage while keeping a floor that grows with each attempt."""
        ceiling = min(self.max_s, self.initial_s * (2 ** (attempt - 1)))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def exhausted(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts
