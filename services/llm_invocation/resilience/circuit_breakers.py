"""One purgatory circuit breaker per (provider, model), with logged and counted state changes.

Purgatory counts consecutive failures and opens at the threshold; after the TTL the next call
is a half-open trial. Purgatory lets every caller through while half-open; with hundreds of
invocations in flight that would be a stampede on a provider that just failed, so we admit one
trial at a time and fail the others fast, as if still open.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from purgatory import AsyncCircuitBreakerFactory

from services.llm_invocation import metrics
from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderError

log = logging.getLogger(__name__)


def _is_not_provider_fault(error: BaseException) -> bool:
    """Purgatory exclusion: only provider faults count; a cancellation, a 429, a 4xx or our
    own publishing failure inside the guarded block says nothing about the provider."""
    return not (isinstance(error, ProviderError) and error.trips_breaker)


class ProviderCircuitBreakers:
    def __init__(self, *, threshold: int = 5, ttl_s: float = 30.0) -> None:
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=ttl_s,
            exclude=[(BaseException, _is_not_provider_fault)],
        )
        self._factory.add_listener(self._on_event)
        self._trials: dict[str, asyncio.Lock] = {}

    @staticmethod
    def circuit_name(provider: str, model: str) -> str:
        return f"{provider}:{model}"

    @asynccontextmanager
    async def guard(self, provider: str, model: str) -> AsyncIterator[None]:
        """Run the block under the circuit; raises CircuitOpen without running it when open."""
        name = self.circuit_name(provider, model)
        breaker = await self._factory.get_breaker(name)
        trial = self._trials.setdefault(name, asyncio.Lock())
        if _trial_due(breaker.context):
            if trial.locked():
                raise CircuitOpen(f"circuit {name} is half-open and its trial call is running")
            async with trial, self._enter(breaker, name):
                yield
            return
        async with self._enter(breaker, name):
            yield

    def state(self, provider: str, model: str) -> str:
        """closed / opened / half-opened (closed for a circuit never used)."""
        contexts: Any = getattr(self._factory.uow.contexts, "breakers", {})
        context = contexts.get(self.circuit_name(provider, model))
        return "closed" if context is None else str(context.state)

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
            await breaker.__aexit__(type(error), error, error.__traceback__)
            raise
        await breaker.__aexit__(None, None, None)

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed":
            return
        state = str(event.state)
        metrics.CIRCUIT_STATE_CHANGES.labels(circuit=name, state=state).inc()
        metrics.CIRCUIT_OPEN.labels(circuit=name).set(0 if state == "closed" else 1)
        level = logging.WARNING if state == "opened" else logging.INFO
        log.log(level, "circuit %s is now %s", name, state, extra={"circuit": name, "state": state})


def _trial_due(context: Any) -> bool:
    if context.state == "half-opened":
        return True
    opened_at = context.opened_at
    return bool(
        context.state == "opened"
        and opened_at is not None
        and time.time() > opened_at + context.ttl
    )
