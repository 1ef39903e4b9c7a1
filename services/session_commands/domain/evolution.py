"""`evolve(state, event) -> state`: how each fact changes a session. Pure, no clock.

Every event carries what its change needs, so replaying a session's events rebuilds its state.
The bounded parts (recent tail, message-id window) are trimmed here, by the policy.
"""

import json
from functools import singledispatch
from typing import Any, TypeVar

from pydantic import BaseModel

from contracts.agents import MessageRole
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionEvent,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    SwitchInitiator,
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)
from contracts.tools import denial_content
from services.session_commands.domain.policy import DEFAULT_POLICY, DeciderPolicy
from services.session_commands.domain.state import (
    AgentSwitch,
    Approval,
    FailedTurn,
    PendingToolCall,
    RecentMessage,
    SessionState,
    SessionStatus,
    ToolCallOutcomeKind,
    ToolRoundInFlight,
    TurnInFlight,
    UserMessage,
)

_Model = TypeVar("_Model", bound=BaseModel)


class InconsistentEvent(ValueError):
    """An event that cannot follow the state it is applied to: a bug, never user input."""


def evolve(
    state: SessionState | None, event: SessionEvent, policy: DeciderPolicy = DEFAULT_POLICY
) -> SessionState | None:
    if isinstance(event, SessionCreated):
        return _created(event)
    if state is None or isinstance(event, CommandRejected):
        return state  # a refusal changes nothing; nothing else can happen to no session
    changed = _apply(event, state, policy)
    if isinstance(event, SessionExpired):
        return changed.model_copy(update={"updated_at": event.occurred_at})
    return changed.model_copy(
        update={"updated_at": event.occurred_at, "last_activity_at": event.occurred_at}
    )


def _created(event: SessionCreated) -> SessionState:
    return SessionState(
        session_id=event.session_id,
        tenant_id=event.tenant_id,
        title=event.title,
        description=event.description,
        system_prompt=event.system_prompt,
        metadata=event.metadata,
        mid_turn_policy=event.mid_turn_policy,
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
        last_activity_at=event.occurred_at,
        current_agent=event.agent,
    )


@singledispatch
def _apply(event: SessionEvent, state: SessionState, policy: DeciderPolicy) -> SessionState:
    raise InconsistentEvent(f"no evolution for {type(event).__name__}")


@_apply.register
def _(event: UserMessageAccepted, state: SessionState, policy: DeciderPolicy) -> SessionState:
    if event.seq != state.next_seq:
        raise InconsistentEvent(f"seq {event.seq} where {state.next_seq} was next")
    message = RecentMessage(
        seq=event.seq,
        message_id=event.message_id,
        role=MessageRole.USER,
        content=event.content,
        author_name=event.author_name,
    )
    queued = UserMessage(
        message_id=event.message_id,
        seq=event.seq,
        content=event.content,
        author_name=event.author_name,
    )
    counters = state.counters
    return _update(
        state,
        recent=_trim_tail((*state.recent, message), policy),
        recent_user_message_ids=(*state.recent_user_message_ids, event.message_id)[
            -policy.message_id_window :
        ],
        queue=(*state.queue, queued) if event.queued else state.queue,
        counters=_update(
            counters, messages=counters.messages + 1, user_messages=counters.user_messages + 1
        ),
    )


@_apply.register
def _(event: TurnStarted, state: SessionState, policy: DeciderPolicy) -> SessionState:
    # The context window always ends with the message the turn answers (context_window.py).
    answered = event.context.messages[-1]
    user_message = UserMessage(
        message_id=event.user_message_id,
        seq=answered.seq,
        content=answered.content,
        author_name=answered.author_name,
    )
    turn = TurnInFlight(
        turn_id=event.turn_id,
        step=event.step,
        agent=event.agent,
        user_message=user_message,
        started_at=event.occurred_at,
    )
    counters = state.counters
    return _update(
        state,
        turn=turn,
        failed_turn=None,
        queue=tuple(q for q in state.queue if q.message_id != event.user_message_id),
        counters=_update(counters, turns_started=counters.turns_started + 1),
    )


@_apply.register
def _(event: AgentSwitched, state: SessionState, policy: DeciderPolicy) -> SessionState:
    record = AgentSwitch(
        from_agent=event.from_agent,
        to_agent=event.to_agent,
        reason=event.reason,
        initiated_by=event.initiated_by.value,
        at=event.occurred_at,
    )
    turn = state.turn
    next_agent = event.to_agent
    if event.turn_id is not None and turn is not None and turn.turn_id == event.turn_id:
        step = event.step if event.step is not None else turn.step + 1
        # The user chose who answers next while this turn ran: a hand-off inside the turn
        # changes only the turn's agent (docs/session-commands.md).
        if turn.user_choice is not None:
            next_agent = turn.user_choice
        turn = _update(turn, step=step, agent=event.to_agent)
    elif event.initiated_by is SwitchInitiator.USER and turn is not None:
        turn = _update(turn, user_choice=event.to_agent)
    return _update(
        state,
        current_agent=next_agent,
        switch_history=(*state.switch_history, record),
        turn=turn,
    )


@_apply.register
def _(event: AssistantMessageAppended, state: SessionState, policy: DeciderPolicy) -> SessionState:
    if event.seq != state.next_seq:
        raise InconsistentEvent(f"seq {event.seq} where {state.next_seq} was next")
    reply_to = state.turn.user_message.seq if state.turn is not None else None
    message = RecentMessage(
        seq=event.seq,
        message_id=event.message_id,
        role=MessageRole.ASSISTANT,
        content=event.content,
        agent=event.agent,
        reply_to_seq=reply_to,
    )
    counters = state.counters
    return _update(
        state,
        # A replaced turn's partial answer stays in the history, not in later prompts.
        recent=_trim_tail((*state.recent, message), policy) if event.in_context else state.recent,
        counters=_update(
            counters,
            messages=counters.messages + 1,
            assistant_messages=counters.assistant_messages + 1,
        ),
    )


@_apply.register
def _(event: TurnCompleted, state: SessionState, policy: DeciderPolicy) -> SessionState:
    counters = state.counters
    return _update(
        state, turn=None, counters=_update(counters, turns_completed=counters.turns_completed + 1)
    )


@_apply.register
def _(event: TurnFailed, state: SessionState, policy: DeciderPolicy) -> SessionState:
    counters = state.counters
    turn = state.turn
    failed = (
        FailedTurn(turn_id=turn.turn_id, user_message=turn.user_message)
        if turn is not None and turn.turn_id == event.turn_id
        else None
    )
    return _update(
        state,
        turn=None,
        failed_turn=failed,
        counters=_update(counters, turns_failed=counters.turns_failed + 1),
    )


@_apply.register
def _(event: TurnCancelled, state: SessionState, policy: DeciderPolicy) -> SessionState:
    counters = _update(state.counters, turns_cancelled=state.counters.turns_cancelled + 1)
    if event.queued:
        queue = tuple(q for q in state.queue if q.message_id != event.user_message_id)
        return _update(state, queue=queue, counters=counters)
    turn = state.turn
    if turn is None or turn.turn_id != event.turn_id:
        raise InconsistentEvent(f"cancel of turn {event.turn_id}, which is not running")
    return _update(state, turn=_update(turn, cancelled=event.reason), counters=counters)


@_apply.register
def _(event: TurnStopped, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _update(state, turn=None)


@_apply.register
def _(event: ToolCallRequested, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _tool_call_announced(event, state, Approval.NOT_NEEDED)


@_apply.register
def _(event: ToolApprovalRequested, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _tool_call_announced(event, state, Approval.PENDING)


def _tool_call_announced(
    event: ToolCallRequested | ToolApprovalRequested, state: SessionState, approval: Approval
) -> SessionState:
    turn = _tool_turn(state, event.turn_id)
    round_ = turn.tool_round or ToolRoundInFlight(
        step=event.step, deadline=event.deadline, assistant_content=event.assistant_content
    )
    if round_.call(event.tool_call_id) is not None:
        # An approved call is requested again for its executor; it keeps its place and state.
        return state
    call = PendingToolCall(
        tool_call_id=event.tool_call_id,
        tool=event.tool,
        arguments=json.dumps(event.arguments, ensure_ascii=False),
        runs_on=event.runs_on,
        idempotent=event.idempotent,
        approval=approval,
    )
    round_ = _update(round_, calls=(*round_.calls, call))
    return _update(state, turn=_update(turn, tool_round=round_))


@_apply.register
def _(event: ToolCallApproved, state: SessionState, policy: DeciderPolicy) -> SessionState:
    state = _settle(state, ToolCallOutcomeKind.APPROVED, event.tool_call_id, policy)
    return _change_call(state, event.turn_id, event.tool_call_id, approval=Approval.APPROVED)


@_apply.register
def _(event: ToolCallDenied, state: SessionState, policy: DeciderPolicy) -> SessionState:
    state = _settle(state, ToolCallOutcomeKind.DENIED, event.tool_call_id, policy)
    return _change_call(
        state,
        event.turn_id,
        event.tool_call_id,
        approval=Approval.DENIED,
        result=denial_content(event.reason),
        is_error=True,
    )


def _settle(
    state: SessionState, outcome: ToolCallOutcomeKind, tool_call_id: str, policy: DeciderPolicy
) -> SessionState:
    entry = f"{outcome.value}:{tool_call_id}"
    window = (*state.settled_tool_calls, entry)[-policy.tool_call_id_window :]
    return _update(state, settled_tool_calls=window)


@_apply.register
def _(event: ToolResultRecorded, state: SessionState, policy: DeciderPolicy) -> SessionState:
    turn = _tool_turn(state, event.turn_id)
    round_ = turn.tool_round
    if round_ is None or round_.call(event.tool_call_id) is None:
        # A call refused before it ran (unknown tool, invalid arguments) is announced by its
        # result alone; the model's arguments were unusable, so the prompt shows none.
        round_ = round_ or ToolRoundInFlight(step=turn.step, deadline=event.occurred_at)
        refused = PendingToolCall(
            tool_call_id=event.tool_call_id, tool=event.tool, arguments="{}", runs_on="runtime"
        )
        round_ = _update(round_, calls=(*round_.calls, refused))
        state = _update(state, turn=_update(turn, tool_round=round_))
    state = _settle(state, ToolCallOutcomeKind.RESULT, event.tool_call_id, policy)
    return _change_call(
        state, event.turn_id, event.tool_call_id, result=event.content, is_error=event.is_error
    )


@_apply.register
def _(event: ToolRoundCompleted, state: SessionState, policy: DeciderPolicy) -> SessionState:
    turn = _tool_turn(state, event.turn_id)
    return _update(
        state,
        turn=_update(turn, step=event.step, tool_round=None, tool_rounds=tuple(event.rounds)),
    )


def _tool_turn(state: SessionState, turn_id: str) -> TurnInFlight:
    turn = state.turn
    if turn is None or turn.turn_id != turn_id:
        raise InconsistentEvent(f"tool event of turn {turn_id}, which is not running")
    return turn


def _change_call(
    state: SessionState, turn_id: str, tool_call_id: str, **changes: Any
) -> SessionState:
    turn = _tool_turn(state, turn_id)
    round_ = turn.tool_round
    if round_ is None or round_.call(tool_call_id) is None:
        raise InconsistentEvent(f"tool call {tool_call_id} is not awaited")
    calls = tuple(
        _update(c, **changes) if c.tool_call_id == tool_call_id else c for c in round_.calls
    )
    return _update(state, turn=_update(turn, tool_round=_update(round_, calls=calls)))


@_apply.register
def _(event: SessionUpdated, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _update(
        state,
        title=event.title,
        description=event.description,
        mid_turn_policy=event.mid_turn_policy,
    )


@_apply.register
def _(event: SessionClosed, state: SessionState, policy: DeciderPolicy) -> SessionState:
    # Queued messages stay in history but are never answered: closing ends the conversation.
    return _update(state, status=SessionStatus.CLOSED, turn=None, queue=())


@_apply.register
def _(event: SessionReopened, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _update(state, status=SessionStatus.ACTIVE)


@_apply.register
def _(event: SessionExpired, state: SessionState, policy: DeciderPolicy) -> SessionState:
    return _update(state, status=SessionStatus.EXPIRED, turn=None, queue=())


@_apply.register
def _(event: SessionErased, state: SessionState, policy: DeciderPolicy) -> SessionState:
    # The skeleton stays (ids, seqs, counters, switch targets) so that the status refuses
    # every later command; everything a person wrote or an agent answered goes.
    return _update(
        state,
        status=SessionStatus.ERASED,
        title="",
        description="",
        system_prompt="",
        metadata={},
        switch_history=tuple(_update(s, reason="") for s in state.switch_history),
        turn=None,
        failed_turn=None,
        queue=(),
        recent=(),
    )


def _trim_tail(
    messages: tuple[RecentMessage, ...], policy: DeciderPolicy
) -> tuple[RecentMessage, ...]:
    """Newest messages within the count and char budget; the newest is always kept.

    Larger than a context window: messages still queued are left out of a window, and the
    window should still be full.
    """
    max_count = policy.context_max_messages + policy.max_queued_messages
    max_chars = 2 * policy.context_max_chars
    kept: list[RecentMessage] = []
    chars = 0
    for message in reversed(messages):
        chars += len(message.content)
        if kept and (len(kept) >= max_count or chars > max_chars):
            break
        kept.append(message)
    kept.reverse()
    return tuple(kept)


def _update(model: _Model, **changes: Any) -> _Model:
    """`model_copy(update=...)` without re-validation: every caller passes valid values."""
    return model.model_copy(update=changes)
