"""When to try a provider call again, and after how long: pure.

Retried: rate limits (429), 5xx, dropped connections and timeouts — but only while nothing has
been streamed to clients yet. Once deltas with seq 0..n are out, a second attempt would stream
different text under the same seq numbers, so a failure mid-stream ends the invocation with a
retryable LLMFailed and the decision goes back to orchestration.
"""

import random
from dataclasses import dataclass, field

from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderError
from services.runtime.retry import Backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, max_s=20.0))
    max_retry_after_s: float = 60.0
    """A Retry-After longer than this is not waited for: the invocation fails (retryable)."""

    def delay(
        self,
        attempt: int,
        error: ProviderError,
        *,
        streamed: bool,
        remaining_s: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if not error.retryable or isinstance(error, CircuitOpen) or streamed:
            return None
        if attempt >= self.max_attempts:
            return None
        delay = self.backoff.delay(attempt, rng)
        if error.retry_after_s is not None:
            if error.retry_after_s > self.max_retry_after_s:
                return None
            # Up to 10% on top, so that the many callers told the same Retry-After spread out.
            delay = max(delay, error.retry_after_s * (rng or random).uniform(1.0, 1.1))
        if delay >= remaining_s:
            return None  # the deadline would pass while waiting
        return delay
