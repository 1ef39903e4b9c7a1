"""The invocations running in this process, so that abandoned ones can be cancelled.

The handler runs each invocation as a task registered here. `abandon` cancels the tasks a rule
from `abandonment` selects and remembers why, so that the handler can tell an abandoned
invocation (answer with LLMFailed "abandoned") from its own cancellation at shutdown
(re-raise: the record stays uncommitted and is handled again by the next owner).
"""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from contracts.base import Message
from contracts.llm import LLMRequested
from services.llm_invocation import metrics
from services.llm_invocation.abandonment import (
    ABANDONED,
    Abandon,
    RunningStep,
    abandonment_for,
    superseded_by,
)

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Registration:
    invocation_id: str
    step: RunningStep
    task: "asyncio.Task[Any]"
    abandoned: str | None = field(default=None)
    error_class: str = field(default=ABANDONED)


class InFlightInvocations:
    def __init__(self) -> None:
        self._by_session: dict[str, dict[str, Registration]] = {}

    def register(self, request: LLMRequested, task: "asyncio.Task[Any]") -> Registration:
        """Track `task`; older invocations of the same session it supersedes are abandoned."""
        self.abandon(superseded_by(request))
        registration = Registration(request.invocation_id, RunningStep.of(request), task)
        self._by_session.setdefault(request.session_id, {})[request.invocation_id] = registration
        metrics.IN_FLIGHT.inc()
        return registration

    def finish(self, registration: Registration) -> None:
        running = self._by_session.get(registration.step.session_id)
        if running is None or running.get(registration.invocation_id) is not registration:
            return
        del running[registration.invocation_id]
        if not running:
            del self._by_session[registration.step.session_id]
        metrics.IN_FLIGHT.dec()

    def abandon(self, rule: Abandon) -> int:
        """Cancel the in-flight invocations `rule` applies to; returns how many."""
        count = 0
        for registration in list(self._by_session.get(rule.session_id, {}).values()):
            if registration.abandoned is None and rule.applies_to(registration.step):
                registration.abandoned = rule.reason
                registration.error_class = rule.error_class
                registration.task.cancel()
                count += 1
                log.info("invocation %s abandoned: %s", registration.invocation_id, rule.reason)
        return count

    def on_fact(self, fact: Message) -> None:
        """A session fact seen by the watcher (services/runtime/session_watch.py)."""
        rule = abandonment_for(fact)
        if rule is not None:
            self.abandon(rule)

    def has_session(self, session_id: str) -> bool:
        return session_id in self._by_session

    def __len__(self) -> int:
        return sum(len(running) for running in self._by_session.values())
