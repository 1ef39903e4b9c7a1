"""When an in-flight invocation is abandoned: pure rules over session facts.

An invocation serves one step of one turn. It is abandoned when nobody will use its answer:
- its turn is over (TurnCompleted / TurnFailed for that turn);
- its session is over (SessionClosed / SessionExpired);
- it is superseded: a newer turn of the same session started (TurnStarted for another turn),
  or the same turn moved on to a later step (AgentSwitched with a higher step), or a newer
  LLMRequested of the same session arrived;
- its turn was cancelled (TurnCancelled): answered as `cancelled` rather than `abandoned`, with
  the text streamed so far, which session-commands keeps as the interrupted answer.
Shutdown and partition revocation also stop invocations, but those are not abandonment: the
request is left uncommitted and the next owner runs it again (see docs/llm-invocation.md).
"""

from dataclasses import dataclass

from contracts.base import Message
from contracts.llm import LLMRequested
from contracts.session_events import (
    AgentSwitched,
    SessionClosed,
    SessionExpired,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
)

ABANDONED = "abandoned"
CANCELLED = "cancelled"
"""The LLMFailed error classes of invocations stopped by these rules."""


@dataclass(frozen=True, slots=True)
class RunningStep:
    """What identifies an in-flight invocation for these rules."""

    session_id: str
    turn_id: str
    step: int

    @classmethod
    def of(cls, request: LLMRequested) -> "RunningStep":
        return cls(request.session_id, request.turn_id, request.step)


@dataclass(frozen=True, slots=True)
class Abandon:
    """Abandon the session's invocations that `applies_to` says are stale."""

    session_id: str
    reason: str
    turn_id: str | None = None
    """Only this turn (None: every turn of the session)."""
    except_turn_id: str | None = None
    """Every turn but this one."""
    before_step: int | None = None
    """Only steps below this one."""
    error_class: str = ABANDONED
    """How the stopped invocation is answered."""

    def applies_to(self, running: RunningStep) -> bool:
        if running.session_id != self.session_id:
            return False
        if self.turn_id is not None and running.turn_id != self.turn_id:
            return False
        if self.except_turn_id is not None and running.turn_id == self.except_turn_id:
            return False
        return self.before_step is None or running.step < self.before_step


def abandonment_for(fact: Message) -> Abandon | None:
    """The invocations a session fact makes stale, if any."""
    if isinstance(fact, TurnCancelled):
        if fact.queued:
            return None  # a queued message's turn: nothing of it runs yet
        return Abandon(
            fact.session_id,
            f"turn {fact.turn_id} was cancelled ({fact.reason.value})",
            turn_id=fact.turn_id,
            error_class=CANCELLED,
        )
    if isinstance(fact, TurnCompleted | TurnFailed):
        return Abandon(fact.session_id, f"turn {fact.turn_id} is over", turn_id=fact.turn_id)
    if isinstance(fact, SessionClosed | SessionExpired):
        return Abandon(fact.session_id, "the session is over")
    if isinstance(fact, TurnStarted):
        return Abandon(
            fact.session_id, f"superseded by turn {fact.turn_id}", except_turn_id=fact.turn_id
        )
    if isinstance(fact, AgentSwitched) and fact.turn_id is not None and fact.step is not None:
        return Abandon(
            fact.session_id,
            f"superseded by step {fact.step} of turn {fact.turn_id}",
            turn_id=fact.turn_id,
            before_step=fact.step,
        )
    return None


def superseded_by(request: LLMRequested) -> Abandon:
    """A new request makes the session's other turns, and earlier steps of its turn, stale."""
    newer = RunningStep.of(request)
    return _Superseding(
        session_id=newer.session_id,
        reason=f"superseded by step {newer.step} of turn {newer.turn_id}",
        newer=newer,
    )


@dataclass(frozen=True, slots=True)
class _Superseding(Abandon):
    newer: RunningStep | None = None

    def applies_to(self, running: RunningStep) -> bool:
        assert self.newer is not None
        if running.session_id != self.session_id or running == self.newer:
            return False
        return running.turn_id != self.newer.turn_id or running.step < self.newer.step
