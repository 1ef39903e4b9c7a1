"""The tool calls running in this process, by session, so that the session-events watcher
(services/runtime/session_watch.py) can stop those whose turn or session is over.

A call is stopped when its turn is cancelled (TurnCancelled of a started turn, TurnStopped),
over (TurnCompleted, TurnFailed) or its session is (SessionClosed, SessionExpired,
SessionErased). The handler tells a stopped call (keep a `cancelled` result, publish nothing:
the turn takes no result any more) from its own cancellation at shutdown (re-raise: the record
stays uncommitted and the next owner runs it).
"""

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from contracts.base import Message
from contracts.session_events import (
    SessionClosed,
    SessionErased,
    SessionExpired,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStopped,
)
from services.tool_invocation import metrics

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class RunningCall:
    session_id: str
    turn_id: str
    tool_call_id: str
    task: "asyncio.Task[Any]"
    stopped: str | None = field(default=None)
    """Why the call was stopped, once it was."""


def turn_end(fact: Message) -> tuple[str, str | None, str] | None:
    """(session, turn or None for every turn, why) when `fact` ends running calls."""
    if isinstance(fact, TurnCancelled):
        if fact.queued:
            return None  # a queued message's turn: nothing of it runs
        return fact.session_id, fact.turn_id, f"turn cancelled ({fact.reason.value})"
    if isinstance(fact, TurnStopped):
        return fact.session_id, fact.turn_id, f"turn stopped ({fact.reason.value})"
    if isinstance(fact, TurnCompleted | TurnFailed):
        return fact.session_id, fact.turn_id, "turn over"
    if isinstance(fact, SessionClosed | SessionExpired | SessionErased):
        return fact.session_id, None, "session over"
    return None


class RunningCalls:
    def __init__(self) -> None:
        self._by_session: dict[str, dict[str, RunningCall]] = {}

    def register(
        self, session_id: str, turn_id: str, tool_call_id: str, task: "asyncio.Task[Any]"
    ) -> RunningCall:
        call = RunningCall(session_id, turn_id, tool_call_id, task)
        self._by_session.setdefault(session_id, {})[tool_call_id] = call
        metrics.IN_FLIGHT.inc()
        return call

    def finish(self, call: RunningCall) -> None:
        running = self._by_session.get(call.session_id)
        if running is None or running.get(call.tool_call_id) is not call:
            return
        del running[call.tool_call_id]
        if not running:
            del self._by_session[call.session_id]
        metrics.IN_FLIGHT.dec()

    def has_session(self, session_id: str) -> bool:
        return session_id in self._by_session

    def on_fact(self, fact: Message) -> None:
        end = turn_end(fact)
        if end is None:
            return
        session_id, turn_id, why = end
        for call in list(self._by_session.get(session_id, {}).values()):
            if call.stopped is None and (turn_id is None or call.turn_id == turn_id):
                call.stopped = why
                call.task.cancel()
                metrics.CANCELLED.inc()
                log.info("tool call %s stopped: %s", call.tool_call_id, why)

    def __len__(self) -> int:
        return sum(len(running) for running in self._by_session.values())
