"""One circuit breaker per (provider, model): the runtime's breakers (services/runtime/
circuit_breakers.py) tripped by provider faults only, failing fast with CircuitOpen."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from services.llm_invocation import metrics
from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderError
from services.runtime.circuit_breakers import CircuitBreakers


def _is_provider_fault(error: BaseException) -> bool:
    """Only provider faults count; a cancellation, a 429, a 4xx or our own publishing failure
    inside the guarded block says nothing about the provider."""
    return isinstance(error, ProviderError) and error.trips_breaker


def _count(circuit: str, state: str) -> None:
    metrics.CIRCUIT_STATE_CHANGES.labels(circuit=circuit, state=state).inc()
    metrics.CIRCUIT_OPEN.labels(circuit=circuit).set(0 if state == "closed" else 1)


class ProviderCircuitBreakers:
    def __init__(
        self,
        *,
        threshold: int = 5,
        ttl_s: float = 10.0,
        first_trial_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._breakers = CircuitBreakers(
            trips=_is_provider_fault,
            open_error=CircuitOpen,
            on_state_change=_count,
            threshold=threshold,
            ttl_s=ttl_s,
            first_trial_s=first_trial_s,
            clock=clock,
        )

    @staticmethod
    def circuit_name(provider: str, model: str) -> str:
        return f"{provider}:{model}"

    @asynccontextmanager
    async def guard(self, provider: str, model: str) -> AsyncIterator[None]:
        """Run the block under the circuit; raises CircuitOpen without running it when open."""
        async with self._breakers.guard(self.circuit_name(provider, model)):
            yield

    def check(self, provider: str, model: str) -> None:
        """Raise CircuitOpen now if `guard` would refuse at once (without running anything)."""
        self._breakers.check(self.circuit_name(provider, model))

    def state(self, provider: str, model: str) -> str:
        """closed / opened / half-opened (closed for a circuit never used)."""
        return self._breakers.state(self.circuit_name(provider, model))

    def next_trial_in(self, provider: str, model: str) -> float | None:
        """Seconds until the next trial may run; None while the circuit is closed."""
        return self._breakers.next_trial_in(self.circuit_name(provider, model))
