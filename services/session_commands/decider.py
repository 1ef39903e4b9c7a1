"""`decide(state, command) -> Decision`: what a command does to a session. Pure, no I/O.

The time is passed in (`now`), event ids are derived from the command id, so the same command
on the same state always yields the same events — a redelivery repeats them exactly.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from contracts.base import Message, derive_id
from contracts.commands import (
    CloseSession,
    CreateSession,
    ReopenSession,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    RejectionReason,
    SessionClosed,
    SessionCreated,
    SessionEvent,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    SwitchInitiator,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    UserMessageAccepted,
)
from contracts.turns import CompleteTurn, ExpireSession, FailTurn, SwitchAgentForTurn
from services.session_commands.context_window import context_window
from services.session_commands.evolution import evolve
from services.session_commands.policy import (
    DEFAULT_POLICY,
    MAX_AGENT_SWITCHES,
    DeciderPolicy,
    MidTurnPolicy,
)
from services.session_commands.state import SessionState, SessionStatus, TurnInFlight, UserMessage

SessionCommand = (
    CreateSession
    | SubmitUserMessage
    | SwitchAgent
    | UpdateSession
    | CloseSession
    | ReopenSession
    | SwitchAgentForTurn
    | CompleteTurn
    | FailTurn
    | ExpireSession
)
TurnCommand = SwitchAgentForTurn | CompleteTurn | FailTurn
_COMMAND_TYPES = (
    CreateSession,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
    CloseSession,
    ReopenSession,
    SwitchAgentForTurn,
    CompleteTurn,
    FailTurn,
    ExpireSession,
)

_Event = TypeVar("_Event", bound=SessionEvent)


@dataclass(frozen=True, slots=True)
class Decision:
    """The events a command produced and the state they lead to.

    `remember`: the command id must be recorded in the session document (with the events as
    its outbox). False only where deciding again can never come out differently: a stale
    internal command, a refusal that rests on facts that never change (tenant, expiry, a
    session that does not exist). Everything else is recorded, so that a redelivery after
    later commands changed the state does not turn an earlier refusal into an acceptance.
    """

    events: tuple[SessionEvent, ...]
    state: SessionState | None
    remember: bool
    rejection: RejectionReason | None = None

    @property
    def ignored(self) -> bool:
        return not self.events and not self.remember


class _Outcome:
    """Collects events for one command, evolving the state after each one."""

    def __init__(
        self,
        state: SessionState | None,
        command: SessionCommand,
        now: datetime,
        policy: DeciderPolicy,
    ) -> None:
        self.state = state
        self.command = command
        self.now = now
        self.policy = policy
        self.events: list[SessionEvent] = []
        self.rejection: RejectionReason | None = None

    def emit(self, event_type: Callable[..., _Event], **fields: Any) -> _Event:
        tenant_id = self.state.tenant_id if self.state is not None else self.command.tenant_id
        event = event_type(
            id=derive_id("event", self.command.id, len(self.events)),
            session_id=self.command.session_id,
            tenant_id=tenant_id,
            occurred_at=self.now,
            **fields,
        )
        self.events.append(event)
        self.state = evolve(self.state, event, self.policy)
        return event

    def reject(self, reason: RejectionReason, detail: str) -> None:
        self.rejection = reason
        self.events.append(
            CommandRejected(
                id=derive_id("event", self.command.id, len(self.events)),
                session_id=self.command.session_id,
                tenant_id=self.command.tenant_id,  # the publisher's, not the session's
                occurred_at=self.now,
                rejected_command_id=self.command.id,
                rejected_command_type=self.command.type,
                reason=reason,
                detail=detail,
            )
        )

    def decision(self, *, remember: bool = True) -> Decision:
        return Decision(tuple(self.events), self.state, remember, self.rejection)

    def final_rejection(self, reason: RejectionReason, detail: str) -> Decision:
        self.reject(reason, detail)
        return self.decision(remember=False)


def as_session_command(message: Message) -> SessionCommand:
    """Narrow a decoded message; decoding with the topic already restricts the types."""
    if not isinstance(message, _COMMAND_TYPES):
        raise TypeError(f"{type(message).__name__} is not a session command")
    return message


def decide(
    state: SessionState | None,
    command: SessionCommand,
    *,
    now: datetime,
    policy: DeciderPolicy = DEFAULT_POLICY,
) -> Decision:
    out = _Outcome(state, command, now, policy)
    if isinstance(command, CreateSession):
        return _create(out, command)
    if state is None:
        if isinstance(command, (SwitchAgentForTurn, CompleteTurn, FailTurn, ExpireSession)):
            return out.decision(remember=False)  # left over from a session since deleted
        return out.final_rejection(RejectionReason.UNKNOWN_SESSION, "no such session")
    if command.tenant_id != state.tenant_id:
        return out.final_rejection(
            RejectionReason.TENANT_MISMATCH, "the session belongs to another tenant"
        )
    if isinstance(command, (SwitchAgentForTurn, CompleteTurn, FailTurn)):
        return _turn_command(out, state, command)
    if isinstance(command, ExpireSession):
        return _expire(out, state, command)
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
        _submit(out, state, command)
    elif isinstance(command, SwitchAgent):
        _switch_by_user(out, state, command)
    elif isinstance(command, UpdateSession):
        out.emit(
            SessionUpdated,
            title=state.title if command.title is None else command.title,
            description=state.description if command.description is None else command.description,
        )
    else:
        _fail_turn_in_flight(out, state, "session_closed", command.reason)
        out.emit(SessionClosed, reason=command.reason)
    return out.decision()


def _create(out: _Outcome, command: CreateSession) -> Decision:
    if out.state is not None:
        # Not remembered: the answer stays the same for as long as the document exists.
        return out.final_rejection(RejectionReason.SESSION_EXISTS, "the session already exists")
    out.emit(
        SessionCreated,
        title=command.title,
        description=command.description,
        system_prompt=command.system_prompt,
        agent=command.initial_agent,
        metadata=command.metadata,
    )
    return out.decision()


def _submit(out: _Outcome, state: SessionState, command: SubmitUserMessage) -> None:
    if state.knows_user_message(command.message_id):
        out.reject(RejectionReason.DUPLICATE_ID, f"message id {command.message_id} already used")
        return
    if not state.is_idle:
        if out.policy.mid_turn is MidTurnPolicy.REJECT:
            out.reject(RejectionReason.TURN_IN_FLIGHT, "a turn is in flight")
            return
        if len(state.queue) >= out.policy.max_queued_messages:
            out.reject(
                RejectionReason.QUEUE_FULL,
                f"{out.policy.max_queued_messages} messages already wait for the turn in flight",
            )
            return
    out.emit(
        UserMessageAccepted,
        message_id=command.message_id,
        seq=state.next_seq,
        content=command.content,
        author_name=command.author_name,
        queued=not state.is_idle,
    )
    if state.is_idle:
        _start_turn(
            out,
            UserMessage(
                message_id=command.message_id,
                seq=state.next_seq,
                content=command.content,
                author_name=command.author_name,
            ),
        )


def _start_turn(out: _Outcome, message: UserMessage) -> None:
    state = _present(out.state)
    out.emit(
        TurnStarted,
        turn_id=derive_id("turn", state.session_id, message.message_id),
        step=0,
        agent=state.current_agent,
        user_message_id=message.message_id,
        context=context_window(state, message, out.policy),
    )


def _start_next_queued(out: _Outcome) -> None:
    state = _present(out.state)
    if state.is_idle and state.queue and state.status is SessionStatus.ACTIVE:
        _start_turn(out, state.queue[0])


def _switch_by_user(out: _Outcome, state: SessionState, command: SwitchAgent) -> None:
    if command.target_agent == state.current_agent:
        return  # a no-op, remembered so a redelivery stays one
    if state.switch_count >= MAX_AGENT_SWITCHES:
        out.reject(RejectionReason.SWITCH_LIMIT_REACHED, _cap_detail())
        return
    # A turn in flight keeps its agent; the user's choice applies from the next turn on.
    out.emit(
        AgentSwitched,
        from_agent=state.current_agent,
        to_agent=command.target_agent,
        reason=command.reason,
        switch_count=state.switch_count + 1,
        initiated_by=SwitchInitiator.USER,
    )


def _turn_command(out: _Outcome, state: SessionState, command: TurnCommand) -> Decision:
    turn = state.turn
    if turn is None or turn.turn_id != command.turn_id or turn.step != command.step:
        # Redelivered, or overtaken (the turn ended, a later step ran): nothing to do.
        return out.decision(remember=False)
    if isinstance(command, CompleteTurn):
        out.emit(
            AssistantMessageAppended,
            message_id=derive_id("assistant-message", turn.turn_id),
            seq=state.next_seq,
            turn_id=turn.turn_id,
            agent=command.agent,
            content=command.content,
        )
        out.emit(TurnCompleted, turn_id=turn.turn_id, agent=command.agent, steps=turn.step + 1)
    elif isinstance(command, FailTurn):
        out.emit(
            TurnFailed,
            turn_id=turn.turn_id,
            agent=command.agent,
            error_class=command.error_class,
            reason=command.reason,
        )
    else:
        _switch_for_turn(out, state, turn, command)
    _start_next_queued(out)
    return out.decision()


def _switch_for_turn(
    out: _Outcome, state: SessionState, turn: TurnInFlight, command: SwitchAgentForTurn
) -> None:
    """A refused hand-off ends the turn (TurnFailed) rather than leave it waiting forever:
    orchestration gets no event to continue on. It should not offer the hand-off at the cap."""
    if command.target_agent == turn.agent:
        refusal = (RejectionReason.INVALID_AGENT, f"{turn.agent} is already running the turn")
    elif state.switch_count >= MAX_AGENT_SWITCHES:
        refusal = (RejectionReason.SWITCH_LIMIT_REACHED, _cap_detail())
    else:
        switch_count = state.switch_count + 1
        out.emit(
            AgentSwitched,
            from_agent=turn.agent,
            to_agent=command.target_agent,
            reason=command.reason,
            switch_count=switch_count,
            initiated_by=SwitchInitiator.ORCHESTRATION,
            turn_id=turn.turn_id,
            step=turn.step + 1,
            context=context_window(state, turn.user_message, out.policy, switch_count=switch_count),
        )
        return
    reason, detail = refusal
    out.reject(reason, detail)
    out.emit(
        TurnFailed, turn_id=turn.turn_id, agent=turn.agent, error_class=reason.value, reason=detail
    )


def _expire(out: _Outcome, state: SessionState, command: ExpireSession) -> Decision:
    if state.status is SessionStatus.EXPIRED or state.last_activity_at > command.last_activity_at:
        return out.decision(remember=False)  # already expired, or active since the job looked
    _fail_turn_in_flight(out, state, "session_expired", "the session expired while inactive")
    out.emit(SessionExpired, last_activity_at=state.last_activity_at)
    return out.decision()


def _fail_turn_in_flight(out: _Outcome, state: SessionState, error_class: str, reason: str) -> None:
    if state.turn is not None:
        out.emit(
            TurnFailed,
            turn_id=state.turn.turn_id,
            agent=state.turn.agent,
            error_class=error_class,
            reason=reason,
        )


def _cap_detail() -> str:
    return f"at most {MAX_AGENT_SWITCHES} agent switches per session"


def _present(state: SessionState | None) -> SessionState:
    if state is None:
        raise AssertionError("a session state is required here")
    return state
