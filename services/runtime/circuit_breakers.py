"""Circuit breakers by name (one per provider and model, one per MCP server), with logged and
counted state changes. What counts as a fault of the guarded dependency, the error raised
while the circuit is open and where state changes are counted are given by the user.

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

log = logging.getLogger(__name__)

TripsBreaker = Callable[[BaseException], bool]
"""Whether an error raised in the guarded block is evidence that the dependency is unhealthy
(a cancellation, a 429, a 4xx or our own publishing failure inside the block is not)."""
OpenError = Callable[[str], Exception]
"""Makes the error raised instead of running the block while the circuit is open."""
OnStateChange = Callable[[str, str], None]
"""(circuit, new state): metrics of the user."""


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


class CircuitBreakers:
    def __init__(
        self,
        *,
        trips: TripsBreaker,
        open_error: OpenError,
        on_state_change: OnStateChange | None = None,
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
            exclude=[(BaseException, lambda error: not trips(error))],
        )
        self._open_error = open_error
        self._on_state_change = on_state_change
        self._factory.add_listener(self._on_event)
        self._first_trial_s = min(first_trial_s, ttl_s)
        self._ttl_s = ttl_s
        self._clock = clock
        self._trials: dict[str, asyncio.Lock] = {}
        self._schedules: dict[str, _TrialSchedule] = {}

    @asynccontextmanager
    async def guard(self, name: str) -> AsyncIterator[None]:
        """Run the block under circuit `name`; raises the open error without running it when
        the circuit is open."""
        breaker = await self._factory.get_breaker(name)
        if breaker.context.state == "closed":
            async with self._enter(breaker, name):
                yield
            return
        self._refuse_until_trial(name)
        trial = self._trials.setdefault(name, asyncio.Lock())
        async with trial, self._enter(breaker, name):
            yield

    def check(self, name: str) -> None:
        """Raise the open error now if `guard` would refuse at once: for a caller that waits
        for something else first (a rate-limit slot), so that it does not wait, and use that
        up, for a call the circuit would refuse."""
        if self.state(name) != "closed":
            self._refuse_until_trial(name)

    def _refuse_until_trial(self, name: str) -> None:
        wait_s = self._schedule(name).next_trial_at - self._clock()
        if wait_s > 0:
            raise self._open_error(f"circuit {name} is open; next trial in {wait_s:.1f} s")
        trial = self._trials.get(name)
        if trial is not None and trial.locked():
            raise self._open_error(f"circuit {name} is half-open and its trial call is running")

    def state(self, name: str) -> str:
        """closed / opened / half-opened (closed for a circuit never used)."""
        contexts: Any = getattr(self._factory.uow.contexts, "breakers", {})
        context = contexts.get(name)
        return "closed" if context is None else str(context.state)

    def next_trial_in(self, name: str) -> float | None:
        """Seconds until the next trial may run; None while the circuit is closed."""
        if self.state(name) == "closed":
            return None
        schedule = self._schedule(name)
        return max(0.0, schedule.next_trial_at - self._clock())

    def _schedule(self, name: str) -> _TrialSchedule:
        return self._schedules.setdefault(name, _TrialSchedule(self._first_trial_s, self._ttl_s))

    @asynccontextmanager
    async def _enter(self, breaker: Any, name: str) -> AsyncIterator[None]:
        try:
            await breaker.__aenter__()
        except Exception as error:  # purgatory raises its OpenedState when the circuit is open
            raise self._open_error(f"circuit {name} is open: {error}") from None
        try:
            yield
        except BaseException as error:
            await self._exit(breaker, name, error)
            raise
        await self._exit(breaker, name, None)

    async def _exit(self, breaker: Any, name: str, error: BaseException | None) -> None:
        if isinstance(error, asyncio.CancelledError):
            # Cut off from outside (a deadline, a cancelled turn, a shutdown): it says nothing
            # about the dependency. purgatory would count it as a success (an exception it is
            # told to ignore ends the request well): reset the failures, close a half-open
            # circuit on a trial that never finished. Not ended at all, it leaves the count
            # and the state as they were; a half-open circuit gets another trial.
            return
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
        if self._on_state_change is not None:
            self._on_state_change(name, state)
        level = logging.WARNING if state == "opened" else logging.INFO
        log.log(level, "circuit %s is now %s", name, state, extra={"circuit": name, "state": state})
