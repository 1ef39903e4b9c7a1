"""Decisions about stopping turns: CancelTurn, the mid-turn policies `interrupt` and `replace`,
and the end of a cancelled turn.

A cancelled turn ends in two facts. `TurnCancelled` at once: for the user the turn is over, and
llm-invocation aborts the step's provider stream on seeing it. The session stays taken until the
running step reports (its LLM result, turned by orchestration into a turn command, as for every
step): that command carries the text streamed before the abort, which is kept in the history
marked interrupted, then `TurnStopped` frees the session and the next queued message starts —
so a message that interrupted the turn has the partial answer in its context. Waiting for the
step instead of reading the stream here keeps the partial answer equal to the deltas streamed
(the stream is cut after the cancel, not at it) and every fact derived from one command.
"""

from contracts.base import derive_id
from contracts.commands import CancelTurn, SubmitUserMessage
from contracts.limits import MAX_CONTENT_LENGTH
from contracts.mid_turn import CancellationReason, MidTurnPolicy
from contracts.session_events import (
    AssistantMessageAppended,
    RejectionReason,
    TurnCancelled,
    TurnStopped,
)
from contracts.turns import CompleteTurn, FailTurn, RequestToolCalls
from services.session_commands.domain.decision import DecisionDraft, TurnCommand
from services.session_commands.domain.state import SessionState, TurnInFlight

_CANCELLING_POLICIES = {
    MidTurnPolicy.INTERRUPT: CancellationReason.INTERRUPTED,
    MidTurnPolicy.REPLACE: CancellationReason.REPLACED,
}


def mid_turn_policy(out: DecisionDraft, state: SessionState) -> MidTurnPolicy:
    """The session's own choice, else the service's default."""
    return state.mid_turn_policy or out.policy.mid_turn


def cancel(out: DecisionDraft, state: SessionState, command: CancelTurn) -> None:
    turn = state.turn
    if turn is not None and command.turn_id in (None, turn.turn_id):
        if turn.cancelled is not None:
            out.reject(
                RejectionReason.TURN_NOT_RUNNING, f"turn {turn.turn_id} is already cancelled"
            )
            return
        cancel_running(
            out, turn, CancellationReason.CANCELLED, command.requested_by, command.reason
        )
        return
    for queued in state.queue:
        if command.turn_id == turn_id_of(state, queued.message_id):
            out.emit(
                TurnCancelled,
                turn_id=command.turn_id,
                user_message_id=queued.message_id,
                reason=CancellationReason.CANCELLED,
                requested_by=command.requested_by,
                detail=command.reason,
                queued=True,
            )
            return
    which = (
        "no turn is running"
        if command.turn_id is None
        else f"turn {command.turn_id} is not running"
    )
    out.reject(RejectionReason.TURN_NOT_RUNNING, which)


def interrupt_for(out: DecisionDraft, state: SessionState, command: SubmitUserMessage) -> None:
    """After a message was queued mid-turn: under `interrupt` / `replace`, cancel the turn."""
    reason = _CANCELLING_POLICIES.get(mid_turn_policy(out, state))
    turn = state.turn
    if reason is None or turn is None or turn.cancelled is not None:
        return
    cancel_running(out, turn, reason, command.author_name, f"message {command.message_id}")


def cancel_running(
    out: DecisionDraft,
    turn: TurnInFlight,
    reason: CancellationReason,
    requested_by: str | None,
    detail: str,
) -> None:
    out.emit(
        TurnCancelled,
        turn_id=turn.turn_id,
        user_message_id=turn.user_message.message_id,
        agent=turn.agent,
        step=turn.step,
        reason=reason,
        requested_by=requested_by,
        detail=detail,
    )
    if turn.awaiting_tools:
        # No model step runs while the turn awaits tools, so none will report: it stops now.
        out.emit(
            TurnStopped,
            turn_id=turn.turn_id,
            agent=turn.agent,
            steps=turn.step + 1,
            reason=reason,
            partial_message_id=None,
        )


def stop_cancelled(
    out: DecisionDraft, state: SessionState, turn: TurnInFlight, command: TurnCommand
) -> None:
    """The cancelled turn's running step reported: keep what it streamed, free the session.

    A CompleteTurn (the answer finished before the abort) keeps the whole answer; a FailTurn
    carries the streamed text (`partial_content`, from LLMFailed `cancelled`); a hand-off asked
    for by the step is not followed."""
    assert turn.cancelled is not None
    if isinstance(command, CompleteTurn):
        partial = command.content
    elif isinstance(command, FailTurn):
        partial = command.partial_content
    elif isinstance(command, RequestToolCalls):
        partial = command.assistant_content
    else:
        partial = ""
    partial_message_id = None
    if partial.strip():
        partial_message_id = derive_id("assistant-message", turn.turn_id)
        out.emit(
            AssistantMessageAppended,
            message_id=partial_message_id,
            seq=state.next_seq,
            turn_id=turn.turn_id,
            agent=turn.agent,
            content=partial[:MAX_CONTENT_LENGTH],
            interrupted=True,
            in_context=turn.cancelled is not CancellationReason.REPLACED,
        )
    out.emit(
        TurnStopped,
        turn_id=turn.turn_id,
        agent=turn.agent,
        steps=turn.step + 1,
        reason=turn.cancelled,
        partial_message_id=partial_message_id,
    )


def turn_id_of(state: SessionState, user_message_id: str) -> str:
    return derive_id("turn", state.session_id, user_message_id)
