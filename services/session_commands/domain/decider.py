"""`decide(state, command) -> Decision`: what a command does to a session. Pure, no I/O.

The time is passed in (`now`), event ids are derived from the command id, so the same command
on the same state always yields the same events — a redelivery repeats them exactly. Session
lifecycle rows live here; turn and agent rows in turn_decisions.py.
"""

from dataclasses import replace
from datetime import datetime

from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CreateSession,
    DenyToolCall,
    EraseSession,
    ReopenSession,
    RetryTurn,
    SubmitToolResult,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.session_events import (
    RejectionReason,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
)
from contracts.turns import ExpireSession, ExpireToolCalls, RecordToolResult
from services.session_commands.command_sources import PublisherRefusal
from services.session_commands.domain.cancellation import cancel
from services.session_commands.domain.decision import (
    Decision,
    DecisionDraft,
    SessionCommand,
    TurnCommand,
    as_session_command,
)
from services.session_commands.domain.policy import (
    DEFAULT_POLICY,
    DeciderPolicy,
)
from services.session_commands.domain.state import SessionState, SessionStatus
from services.session_commands.domain.tool_decisions import (
    approve_tool_call,
    deny_tool_call,
    expire_tool_calls,
    record_tool_result,
    submit_tool_result,
)
from services.session_commands.domain.turn_decisions import (
    fail_turn_in_flight,
    retry,
    start_next_queued,
    submit,
    switch_by_user,
    turn_command,
)

__all__ = ["Decision", "SessionCommand", "as_session_command", "decide", "refuse_publisher"]


def decide(
    state: SessionState | None,
    command: SessionCommand,
    *,
    now: datetime,
    policy: DeciderPolicy = DEFAULT_POLICY,
) -> Decision:
    if isinstance(command, CreateSession):
        return _create(DecisionDraft(state, command, now, policy), command)
    if state is not None and command.tenant_id != state.tenant_id:
        # Another tenant's session is, to this publisher, no session at all: the same answer
        # as for an id nobody uses, so that a refusal does not confirm that the session exists.
        return replace(decide(None, command, now=now, policy=policy), state=state)
    out = DecisionDraft(state, command, now, policy)
    if state is None:
        if isinstance(command, TurnCommand | ExpireSession | RecordToolResult | ExpireToolCalls):
            return out.decision(remember=False)  # left over from a session since deleted
        return out.final_rejection(RejectionReason.UNKNOWN_SESSION, "no such session")
    if isinstance(command, TurnCommand):
        return turn_command(out, state, command)
    if isinstance(command, RecordToolResult):
        remember = record_tool_result(out, state, command)
        if remember:  # its answer may end the turn (tool_results_too_large)
            start_next_queued(out)
        return out.decision(remember=remember)
    if isinstance(command, ExpireToolCalls):
        if not expire_tool_calls(out, state, command):
            return out.decision(remember=False)
        start_next_queued(out)
        return out.decision()
    if isinstance(command, ExpireSession):
        return _expire(out, state, command)
    if isinstance(command, EraseSession):
        return _erase(out, state, command)
    if state.status is SessionStatus.ERASED:
        # Final: nothing brings an erased session back, so a replay of its earlier commands
        # is refused however often it comes.
        return out.final_rejection(RejectionReason.SESSION_ERASED, "the session was erased")
    if state.status is SessionStatus.EXPIRED:
        return out.final_rejection(RejectionReason.SESSION_EXPIRED, "the session has expired")
    if isinstance(command, ReopenSession):
        if state.status is not SessionStatus.CLOSED:
            out.reject(RejectionReason.NOT_CLOSED, "the session is not closed")
        else:
            out.emit(SessionReopened)
        return out.decision()
    if state.status is SessionStatus.CLOSED:
        out.reject(RejectionReason.SESSION_CLOSED, "the session is closed")
        return out.decision()
    if isinstance(command, SubmitUserMessage):
        submit(out, state, command)
    elif isinstance(command, SwitchAgent):
        switch_by_user(out, state, command)
    elif isinstance(command, RetryTurn):
        retry(out, state, command)
    elif isinstance(command, UpdateSession):
        out.emit(
            SessionUpdated,
            title=state.title if command.title is None else command.title,
            description=state.description if command.description is None else command.description,
            mid_turn_policy=command.mid_turn_policy or state.mid_turn_policy,
        )
    elif isinstance(command, CancelTurn):
        cancel(out, state, command)
        start_next_queued(out)  # a turn awaiting tools stops at once (cancellation.py)
    elif isinstance(command, SubmitToolResult):
        submit_tool_result(out, state, command)
        # The round's last answer may end the turn (tool_results_too_large): the session is
        # free, and a message queued meanwhile would otherwise wait for the next one.
        start_next_queued(out)
    elif isinstance(command, ApproveToolCall):
        approve_tool_call(out, state, command)
    elif isinstance(command, DenyToolCall):
        deny_tool_call(out, state, command)
        start_next_queued(out)  # as for a result
    else:
        fail_turn_in_flight(out, state, "session_closed", command.reason)
        out.emit(SessionClosed, reason=command.reason)
    return out.decision()


def refuse_publisher(
    command: SessionCommand, refusal: PublisherRefusal, *, now: datetime
) -> Decision:
    """A publisher that may not act for the command's tenant (command_sources.py). Decided
    without the session: the answer is the same whether it exists or not, and final."""
    out = DecisionDraft(None, command, now, DEFAULT_POLICY)
    return out.final_rejection(refusal.reason, refusal.detail)


def _create(out: DecisionDraft, command: CreateSession) -> Decision:
    if out.state is not None:
        # Not remembered: the answer stays the same for as long as the document exists. The
        # same answer whichever tenant asks: it says the id is taken, not by whom (session ids
        # are one key space, docs/security.md).
        return out.final_rejection(RejectionReason.SESSION_EXISTS, "the session already exists")
    out.emit(
        SessionCreated,
        title=command.title,
        description=command.description,
        system_prompt=command.system_prompt,
        agent=command.initial_agent,
        metadata=command.metadata,
        mid_turn_policy=command.mid_turn_policy,
    )
    return out.decision()


def _erase(out: DecisionDraft, state: SessionState, command: EraseSession) -> Decision:
    """Any status but erased; erasing again is accepted and changes nothing (idempotent)."""
    if state.status is not SessionStatus.ERASED:
        fail_turn_in_flight(out, state, "session_erased", "the session was erased")
        out.emit(SessionErased, requested_by=command.requested_by, reason=command.reason)
    return out.decision()


def _expire(out: DecisionDraft, state: SessionState, command: ExpireSession) -> Decision:
    if (
        state.status in (SessionStatus.EXPIRED, SessionStatus.ERASED)
        or state.last_activity_at > command.last_activity_at
    ):
        return out.decision(remember=False)  # already expired, or active since the job looked
    fail_turn_in_flight(out, state, "session_expired", "the session expired while inactive")
    out.emit(SessionExpired, last_activity_at=state.last_activity_at)
    return out.decision()
