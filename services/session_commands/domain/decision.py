"""What deciding one command produces: the `Decision`, and the `DecisionDraft` that builds it.

`DecisionDraft.emit` derives each event id from the command id and its position, stamps the time the
caller passed in, and evolves the state after every event, so a later event of the same command
(a TurnStarted after an AssistantMessageAppended) sees the state its predecessors made.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from contracts.base import Message, derive_id
from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CloseSession,
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
    CommandRejected,
    RejectionReason,
    SessionEvent,
)
from contracts.turns import (
    CompleteTurn,
    ExpireSession,
    ExpireToolCalls,
    FailTurn,
    RecordToolResult,
    RequestToolCalls,
    SwitchAgentForTurn,
)
from services.session_commands.domain.evolution import evolve
from services.session_commands.domain.policy import (
    DeciderPolicy,
)
from services.session_commands.domain.state import SessionState

SessionCommand = (
    CreateSession
    | SubmitUserMessage
    | SwitchAgent
    | UpdateSession
    | CloseSession
    | ReopenSession
    | RetryTurn
    | CancelTurn
    | EraseSession
    | SubmitToolResult
    | ApproveToolCall
    | DenyToolCall
    | SwitchAgentForTurn
    | CompleteTurn
    | FailTurn
    | RequestToolCalls
    | RecordToolResult
    | ExpireToolCalls
    | ExpireSession
)
TurnCommand = SwitchAgentForTurn | CompleteTurn | FailTurn | RequestToolCalls


def as_session_command(message: Message) -> SessionCommand:
    """Narrow a decoded message; decoding with the topic already restricts the types."""
    if not isinstance(message, SessionCommand):
        raise TypeError(f"{type(message).__name__} is not a session command")
    return message


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


class DecisionDraft:
    """The decision for one command while it is being made: collects events, evolving the state
    after each one. (`Outcome` is llm-invocation's word for how an invocation ended.)"""

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
        return self.add(self.build(event_type, **fields))

    def build(self, event_type: Callable[..., _Event], **fields: Any) -> _Event:
        """The event `emit` would add next, not added yet: for a decision that must look at it
        (will it fit in a record?) before committing to it. `add` it before any other event:
        its id is derived from its position."""
        tenant_id = self.state.tenant_id if self.state is not None else self.command.tenant_id
        return event_type(
            id=derive_id("event", self.command.id, len(self.events)),
            session_id=self.command.session_id,
            tenant_id=tenant_id,
            occurred_at=self.now,
            **fields,
        )

    def add(self, event: _Event) -> _Event:
        self.events.append(event)
        self.state = evolve(self.state, event, self.policy)
        return event

    def reject(self, reason: RejectionReason, detail: str) -> None:
        self.rejection = reason
        self.events.append(
            CommandRejected(
                # Not the id an acceptance of this command id gets: a refusal that is not
                # remembered (a forged or re-signed copy, another tenant's reuse) can follow or
                # precede the acceptance, and consumers that keep one record per event id (the
                # audit log) would drop one of the two. With the reason: two refusals of one
                # command id for different reasons are two facts.
                id=derive_id("event", self.command.id, len(self.events), "rejected", reason.value),
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
