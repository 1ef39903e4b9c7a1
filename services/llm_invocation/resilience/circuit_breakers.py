"""One purgatory circuit breaker per (provider, model), with logged and counted state changes.

Purgatory counts consecutive failures and opens at the threshold. When the trials run is ours,
not purgatory's fixed TTL: the first trial comes `first_trial_s` after opening, and each failed
trial doubles the wait, up to `ttl_s`. A short outage is noticed within a second or two of its
end, a long one costs one probe call per `ttl_s`. (With a fixed 30 s TTL the circuit closed
21 s after the provider had recovered, failing every turn in between.)

Purgatory lets every caller through while half-open; with hundreds of invocations in flight
that would be a stampede on a provider that just failed, so we admit one trial at a time and
fail the others fast, as if still open.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from purgatory import AsyncCircuitBreakerFactory

from services.llm_invocation import metrics
from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderError

log = logging.getLogger(__name__)


def _is_not_provider_fault(error: BaseException) -> bool:
    """Purgatory exclusion: only provider faults count; a cancellation, a 429, a 4xx or our
    own publishing failure inside the guarded block says nothing about the provider."""
    return not (isinstance(error, ProviderError) and error.trips_breaker)


@dataclass
class _TrialSchedule:
    """When the next half-open trial of one circuit may run (our clock, not purgatory's)."""

    first_s: float
    max_s: float
    wait_s: float = 0.0
    next_trial_at: float = 0.0

    def opened(self, now: float, *, after_failed_trial: bool) -> None:
        self.wait_s = min(self.wait_s * 2, self.max_s) if after_failed_trial else self.first_s
        self.next_trial_at = now + self.wait_s


class ProviderCircuitBreakers:
    def __init__(
        self,
        *,
        threshold: int = 5,
        ttl_s: float = 10.0,
        first_trial_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`ttl_s`: the longest wait between trials; `first_trial_s`: the first wait (capped
        by `ttl_s`), doubled after each failed trial."""
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            # Purgatory would go half-open on its own clock after its TTL; ours decides when a
            # trial may enter, so purgatory's gate is left open.
            default_ttl=0,
            exclude=[(BaseException, _is_not_provider_fault)],
        )
        self._factory.add_listener(self._on_event)
        self._first_trial_s = min(first_trial_s, ttl_s)
        self._ttl_s = ttl_s
        self._clock = clock
        self._trials: dict[str, asyncio.Lock] = {}
        self._schedules: dict[str, _TrialSchedule] = {}

    @staticmethod
    def circuit_name(provider: str, model: str) -> str:
        return f"{provider}:{model}"

    @asynccontextmanager
    async def guard(self, provider: str, model: str) -> AsyncIterator[None]:
        """Run the block under the circuit; raises CircuitOpen without running it when open."""
        name = self.circuit_name(provider, model)
        breaker = await self._factory.get_breaker(name)
        if breaker.context.state == "closed":
            async with self._enter(breaker, name):
                yield
            return
        schedule = self._schedule(name)
        wait_s = schedule.next_trial_at - self._clock()
        if wait_s > 0:
            raise CircuitOpen(f"circuit {name} is open; next trial in {wait_s:.1f} s")
        trial = self._trials.setdefault(name, asyncio.Lock())
        if trial.locked():
            raise CircuitOpen(f"circuit {name} is half-open and its trial call is running")
        async with trial, self._enter(breaker, name):
            yield

    def state(self, provider: str, model: str) -> str:
        """closed / opened / half-opened (closed for a circuit never used)."""
        contexts: Any = getattr(self._factory.uow.contexts, "breakers", {})
        context = contexts.get(self.circuit_name(provider, model))
        return "closed" if context is None else str(context.state)

    def next_trial_in(self, provider: str, model: str) -> float | None:
        """Seconds until the next trial may run; None while the circuit is closed."""
        if self.state(provider, model) == "closed":
            return None
        schedule = self._schedule(self.circuit_name(provider, model))
        return max(0.0, schedule.next_trial_at - self._clock())

    def _schedule(self, name: str) -> _TrialSchedule:
        return self._schedules.setdefault(name, _TrialSchedule(self._first_trial_s, self._ttl_s))

    @asynccontextmanager
    async def _enter(self, breaker: Any, name: str) -> AsyncIterator[None]:
        try:
            await breaker.__aenter__()
        except ProviderError:
            raise
        except Exception as error:  # purgatory raises its OpenedState when the circuit is open
            raise CircuitOpen(f"circuit {name} is open: {error}") from None
        try:
            yield
        except BaseException as error:
            await self._exit(breaker, name, error)
            raise
        await self._exit(breaker, name, None)

    async def _exit(self, breaker: Any, name: str, error: BaseException | None) -> None:
        before = breaker.context.state
        if error is None:
            await breaker.__aexit__(None, None, None)
        else:
            await breaker.__aexit__(type(error), error, error.__traceback__)
        if breaker.context.state == "opened" and before != "opened":
            # Opened by this call: at the threshold, or by its failed trial.
            self._schedule(name).opened(self._clock(), after_failed_trial=before == "half-opened")

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed":
            return
        state = str(event.state)
        metrics.CIRCUIT_STATE_CHANGES.labels(circuit=name, state=state).inc()
        metrics.CIRCUIT_OPEN.labels(circuit=name).set(0 if state == "closed" else 1)
        level = logging.WARNING if state == "opened" else logging.INFO
        log.log(level, "circuit %s is now %s", name, state, extra={"circuit": name, "state": state})
