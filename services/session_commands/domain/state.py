"""The state of one session as the decider sees it: immutable, bounded, JSON-serialisable.

Everything here has a size bound, because the whole state lives in one MongoDB document:
the switch history by the switch cap, the queue by the queue bound, the recent-message tail
and the window of user message ids by the policy. The full history lives in `messages`.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt

from contracts.agents import AgentType, MessageRole
from contracts.base import Metadata, UtcDatetime
from contracts.mid_turn import CancellationReason, MidTurnPolicy
from contracts.tools import ToolCallOutcome, ToolRound


class SessionStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    ERASED = "erased"


class StateModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentSwitch(StateModel):
    """One entry of the switch history (the seed's AgentSwitch)."""

    from_agent: AgentType
    to_agent: AgentType
    reason: str
    initiated_by: str
    at: UtcDatetime


class RecentMessage(StateModel):
    """A message of the bounded tail kept for context windows.

    `reply_to_seq` (assistant messages) is the seq of the user message the answer belongs to:
    a message queued mid-turn gets its seq on arrival, before the answer to the earlier turn,
    and the context window uses it to put each answer right after its question.
    """

    seq: PositiveInt
    message_id: str
    role: MessageRole
    content: str
    author_name: str | None = None
    agent: AgentType | None = None
    reply_to_seq: PositiveInt | None = None


class UserMessage(StateModel):
    """A user message a turn answers, or one queued mid-turn waiting to become the next turn.

    Its content is kept whole here: the recent tail may have dropped it by the time it runs,
    yet the context window of its turn must always include it.
    """

    message_id: str
    seq: PositiveInt
    content: str
    author_name: str | None = None


class ToolCallOutcomeKind(StrEnum):
    RESULT = "result"
    APPROVED = "approved"
    DENIED = "denied"


class Approval(StrEnum):
    NOT_NEEDED = "not_needed"
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class PendingToolCall(StateModel):
    """One call of the round the turn waits on; `result` is set once it is answered."""

    tool_call_id: str
    tool: str
    arguments: str
    runs_on: str
    idempotent: bool = False
    approval: Approval = Approval.NOT_NEEDED
    result: str | None = None
    is_error: bool = False

    def outcome(self) -> ToolCallOutcome:
        return ToolCallOutcome(
            tool_call_id=self.tool_call_id,
            tool=self.tool,
            arguments=self.arguments,
            content=self.result or "",
            is_error=self.is_error,
        )


class ToolRoundInFlight(StateModel):
    """The turn waits for these calls (turn state "awaiting tools"): no model step runs."""

    step: NonNegativeInt
    deadline: UtcDatetime
    assistant_content: str = ""
    calls: tuple[PendingToolCall, ...] = ()

    def call(self, tool_call_id: str) -> PendingToolCall | None:
        return next((c for c in self.calls if c.tool_call_id == tool_call_id), None)

    @property
    def answered(self) -> bool:
        return all(call.result is not None for call in self.calls)


class TurnInFlight(StateModel):
    turn_id: str
    step: NonNegativeInt
    agent: AgentType
    user_message: UserMessage
    started_at: UtcDatetime
    cancelled: CancellationReason | None = Field(
        default=None,
        description="Cancelled, waiting for its running step to report (cancellation.py).",
    )
    tool_round: ToolRoundInFlight | None = Field(
        default=None, description="Set while the turn awaits tool results (tool_decisions.py)."
    )
    tool_rounds: tuple[ToolRound, ...] = Field(
        default=(),
        description="The turn's answered rounds, for the next prompts; bounded by "
        "MAX_TOOL_CALLS_PER_TURN calls.",
    )
    user_choice: AgentType | None = Field(
        default=None,
        description="The agent a user's switch during this turn chose for the next turn: a "
        "hand-off later in the turn changes only the turn's agent (evolution.py).",
    )

    @property
    def awaiting_tools(self) -> bool:
        return self.tool_round is not None

    def tool_calls_made(self) -> int:
        pending = len(self.tool_round.calls) if self.tool_round is not None else 0
        return pending + sum(len(r.calls) for r in self.tool_rounds)

    def answered_call(self, tool_call_id: str) -> bool:
        return any(c.tool_call_id == tool_call_id for r in self.tool_rounds for c in r.calls)


class FailedTurn(StateModel):
    """The session's most recent turn, when it failed: what RetryTurn may run again."""

    turn_id: str
    user_message: UserMessage


class Counters(StateModel):
    messages: NonNegativeInt = 0
    user_messages: NonNegativeInt = 0
    assistant_messages: NonNegativeInt = 0
    turns_started: NonNegativeInt = 0
    turns_completed: NonNegativeInt = 0
    turns_failed: NonNegativeInt = 0
    turns_cancelled: NonNegativeInt = 0


class SessionState(StateModel):
    session_id: str
    tenant_id: str
    title: str = ""
    description: str = ""
    system_prompt: str = ""
    metadata: Metadata = Field(default_factory=dict)
    mid_turn_policy: MidTurnPolicy | None = Field(
        default=None, description="Chosen by the session; None: the service's default."
    )
    status: SessionStatus = SessionStatus.ACTIVE
    created_at: UtcDatetime
    updated_at: UtcDatetime
    last_activity_at: UtcDatetime
    current_agent: AgentType
    switch_history: tuple[AgentSwitch, ...] = ()
    turn: TurnInFlight | None = None
    failed_turn: FailedTurn | None = Field(
        default=None, description="Set by TurnFailed, cleared by the next TurnStarted."
    )
    queue: tuple[UserMessage, ...] = ()
    recent: tuple[RecentMessage, ...] = Field(
        default=(), description="Newest last; bounded by the policy's count and char budget."
    )
    recent_user_message_ids: tuple[str, ...] = Field(
        default=(), description="Window for duplicate message ids; newest last."
    )
    settled_tool_calls: tuple[str, ...] = Field(
        default=(),
        description="Window of `<outcome>:<tool_call_id>` (result, approved, denied), newest "
        "last: a repeat is a no-op even after its turn ended (idempotent by tool call id).",
    )
    counters: Counters = Counters()

    @property
    def switch_count(self) -> int:
        return len(self.switch_history)

    @property
    def next_seq(self) -> int:
        return self.counters.messages + 1

    @property
    def is_idle(self) -> bool:
        return self.turn is None

    def knows_user_message(self, message_id: str) -> bool:
        return message_id in self.recent_user_message_ids

    def tool_call_settled(self, outcome: "ToolCallOutcomeKind", tool_call_id: str) -> bool:
        return f"{outcome.value}:{tool_call_id}" in self.settled_tool_calls
