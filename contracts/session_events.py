"""Facts published by session-commands, the single writer of session state.

Event ids are derived from the id of the command that produced them, so a redelivered command
re-publishes the same ids and consumers drop duplicates by id.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from contracts.agents import AgentType, MessageRole
from contracts.base import Contract, Id, Message, Metadata, UtcDatetime
from contracts.commands import AuthorName, Content, Description, Reason, SystemPrompt, Title
from contracts.limits import MAX_CONTEXT_MESSAGES, MAX_TOOL_CALLS_PER_TURN
from contracts.llm import ToolName
from contracts.mid_turn import CancellationReason, MidTurnPolicy
from contracts.tools import AssistantText, RunsOn, ToolArguments, ToolResultContent, ToolRound


class SessionEvent(Message):
    tenant_id: Id


class ContextMessage(Contract):
    """One message of the conversation as handed to orchestration."""

    seq: PositiveInt = Field(description="Position in the session's history, from 1.")
    role: MessageRole
    content: Content
    author_name: AuthorName | None = None
    agent: AgentType | None = Field(default=None, description="The agent that wrote it.")


class ConversationContext(Contract):
    """What orchestration needs to build a prompt without reading the database."""

    system_prompt: SystemPrompt = ""
    messages: Annotated[list[ContextMessage], Field(max_length=MAX_CONTEXT_MESSAGES)]
    switch_count: NonNegativeInt


class SwitchInitiator(StrEnum):
    USER = "user"
    ORCHESTRATION = "orchestration"


class SessionCreated(SessionEvent):
    type: Literal["session.created.v1"] = "session.created.v1"
    title: Title
    description: Description
    system_prompt: SystemPrompt
    agent: AgentType
    metadata: Metadata
    mid_turn_policy: MidTurnPolicy | None = Field(
        default=None, description="The session's mid-turn policy; None: the service's default."
    )


class UserMessageAccepted(SessionEvent):
    type: Literal["session.user_message_accepted.v1"] = "session.user_message_accepted.v1"
    message_id: Id
    seq: PositiveInt
    content: Content
    author_name: AuthorName | None = None
    queued: bool = Field(description="True when it waits for the turn in flight to finish.")


class TurnStarted(SessionEvent):
    type: Literal["turn.started.v1"] = "turn.started.v1"
    turn_id: Id
    step: NonNegativeInt
    agent: AgentType
    user_message_id: Id
    context: ConversationContext


class AgentSwitched(SessionEvent):
    """The current agent changed. Carries the context when a turn continues with the new agent."""

    type: Literal["session.agent_switched.v1"] = "session.agent_switched.v1"
    from_agent: AgentType
    to_agent: AgentType
    reason: Reason
    switch_count: NonNegativeInt
    initiated_by: SwitchInitiator
    turn_id: Id | None = None
    step: NonNegativeInt | None = Field(default=None, description="The step the new agent runs.")
    context: ConversationContext | None = None
    rounds: Annotated[list[ToolRound], Field(max_length=MAX_TOOL_CALLS_PER_TURN)] = Field(
        default_factory=list,
        description="A hand-off inside a turn that called tools: the turn's answered tool "
        "rounds so far, for the new agent's prompt (as ToolRoundCompleted carries them).",
    )


class AssistantMessageAppended(SessionEvent):
    type: Literal["session.assistant_message_appended.v1"] = "session.assistant_message_appended.v1"
    message_id: Id
    seq: PositiveInt
    turn_id: Id
    agent: AgentType
    content: Content
    interrupted: bool = Field(
        default=False, description="A cancelled turn's partial answer: the text streamed so far."
    )
    in_context: bool = Field(
        default=True,
        description="False: kept in the history but left out of later prompts (policy replace).",
    )


class TurnCompleted(SessionEvent):
    type: Literal["turn.completed.v1"] = "turn.completed.v1"
    turn_id: Id
    agent: AgentType
    steps: PositiveInt


class TurnFailed(SessionEvent):
    type: Literal["turn.failed.v1"] = "turn.failed.v1"
    turn_id: Id
    agent: AgentType
    error_class: Annotated[str, Field(max_length=100)]
    reason: Reason


class SessionUpdated(SessionEvent):
    type: Literal["session.updated.v1"] = "session.updated.v1"
    title: Title
    description: Description
    mid_turn_policy: MidTurnPolicy | None = Field(
        default=None, description="The session's mid-turn policy; None: the service's default."
    )


class TurnCancelled(SessionEvent):
    """A turn was cancelled. For the user it is over: its provider stream is being aborted.
    The session takes the next turn once the cancelled step reported (TurnStopped)."""

    type: Literal["turn.cancelled.v1"] = "turn.cancelled.v1"
    turn_id: Id
    user_message_id: Id
    agent: AgentType | None = Field(default=None, description="None for a queued message's turn.")
    step: NonNegativeInt | None = Field(default=None, description="The step that was running.")
    reason: CancellationReason
    requested_by: AuthorName | None = None
    detail: Reason = ""
    queued: bool = Field(
        default=False,
        description="The turn had not started: its queued message was dropped from the queue.",
    )


class TurnStopped(SessionEvent):
    """The cancelled turn's running step reported; its partial answer, if any text was streamed,
    is in the history (AssistantMessageAppended with interrupted=true). The session is free."""

    type: Literal["turn.stopped.v1"] = "turn.stopped.v1"
    turn_id: Id
    agent: AgentType
    steps: PositiveInt
    reason: CancellationReason
    partial_message_id: Id | None = Field(
        default=None, description="The kept partial answer; None when nothing was streamed."
    )


class SessionClosed(SessionEvent):
    type: Literal["session.closed.v1"] = "session.closed.v1"
    reason: Reason


class SessionReopened(SessionEvent):
    type: Literal["session.reopened.v1"] = "session.reopened.v1"


class SessionExpired(SessionEvent):
    type: Literal["session.expired.v1"] = "session.expired.v1"
    last_activity_at: UtcDatetime


class SessionErased(SessionEvent):
    """The session's content was erased (EraseSession): its messages keep their ids and seqs
    but no content, its title, description, system prompt and metadata are empty. Readers
    that keep content of the session delete it (llm-invocation its kept LLM results)."""

    type: Literal["session.erased.v1"] = "session.erased.v1"
    requested_by: AuthorName | None = None
    reason: Reason


class ToolCallEvent(SessionEvent):
    turn_id: Id
    tool_call_id: Id = Field(description="Unique within the turn; answer the call with it.")
    tool: ToolName


class ToolCallRequested(ToolCallEvent):
    """Run this tool now: the client (runs_on `client`, answer with session.submit_tool_result.v1)
    or tool-invocation (runs_on `mcp:<server>`). Without a result by `deadline` the turn fails
    (`tool_deadline_exceeded`)."""

    type: Literal["tool.call_requested.v1"] = "tool.call_requested.v1"
    step: NonNegativeInt = Field(description="The step whose model asked for the call.")
    agent: AgentType
    arguments: ToolArguments
    runs_on: RunsOn
    idempotent: bool = Field(
        default=False, description="The catalogue says running it twice is harmless (retries)."
    )
    deadline: UtcDatetime
    assistant_content: AssistantText = Field(
        default="",
        description="Text the model wrote alongside the round's calls; on the round's first "
        "call only (it goes back into the next prompt with the calls).",
    )


class ToolApprovalRequested(ToolCallEvent):
    """A `needs_approval` tool waits for session.approve_tool_call.v1 / deny_tool_call.v1; once
    approved it is requested (ToolCallRequested) like any other call."""

    type: Literal["tool.approval_requested.v1"] = "tool.approval_requested.v1"
    step: NonNegativeInt
    agent: AgentType
    arguments: ToolArguments
    runs_on: RunsOn
    idempotent: bool = False
    deadline: UtcDatetime
    assistant_content: AssistantText = ""


class ToolCallApproved(ToolCallEvent):
    type: Literal["tool.call_approved.v1"] = "tool.call_approved.v1"
    requested_by: AuthorName | None = None


class ToolCallDenied(ToolCallEvent):
    """The call is not run; the model reads `denied: <reason>` as its result."""

    type: Literal["tool.call_denied.v1"] = "tool.call_denied.v1"
    requested_by: AuthorName | None = None
    reason: Reason


class ToolResultRecorded(ToolCallEvent):
    """A call's result was accepted (the first for its tool_call_id; repeats change nothing)."""

    type: Literal["tool.result_recorded.v1"] = "tool.result_recorded.v1"
    content: ToolResultContent
    is_error: bool
    source: Annotated[str, Field(max_length=100)] = Field(
        description='Who answered: "client", "mcp:<server>", or "runtime" for a call refused '
        "before it ran (unknown tool, invalid arguments)."
    )


class ToolRoundCompleted(SessionEvent):
    """Every call of the round has its result: the turn continues on the same agent at `step`.
    Carries what orchestration needs for the next prompt: the context and the turn's rounds."""

    type: Literal["turn.tool_round_completed.v1"] = "turn.tool_round_completed.v1"
    turn_id: Id
    step: NonNegativeInt = Field(description="The step the agent runs next.")
    agent: AgentType
    context: ConversationContext
    rounds: Annotated[list[ToolRound], Field(min_length=1, max_length=MAX_TOOL_CALLS_PER_TURN)]


class RejectionReason(StrEnum):
    UNKNOWN_SESSION = "unknown_session"
    SESSION_EXISTS = "session_exists"
    SESSION_CLOSED = "session_closed"
    SESSION_EXPIRED = "session_expired"
    # Retired: a foreign tenant now gets `unknown_session`, as if the session did not exist.
    # Kept so that records already on the topics still decode.
    TENANT_MISMATCH = "tenant_mismatch"
    DUPLICATE_ID = "duplicate_id"
    SWITCH_LIMIT_REACHED = "switch_limit_reached"
    QUEUE_FULL = "queue_full"
    TURN_IN_FLIGHT = "turn_in_flight"
    INVALID_AGENT = "invalid_agent"
    NOT_CLOSED = "not_closed"
    NOT_RETRYABLE = "not_retryable"
    # The command's publisher (`source`) may not act for its tenant (docs/security.md).
    TENANT_NOT_ALLOWED = "tenant_not_allowed"
    # The `signature` header does not prove the `source` the command claims.
    SIGNATURE_INVALID = "signature_invalid"
    # A CancelTurn for a turn that is not running (over, already cancelled, or unknown).
    TURN_NOT_RUNNING = "turn_not_running"
    # The session was erased (EraseSession): it takes no further command.
    SESSION_ERASED = "session_erased"
    # A tool result, approval or denial for a call the running turn does not wait for in that
    # way (unknown id, turn over, approval pending, already approved, another executor's call).
    TOOL_CALL_NOT_PENDING = "tool_call_not_pending"


class CommandRejected(SessionEvent):
    """A valid command the session refused. `tenant_id` is the publisher's tenant."""

    type: Literal["session.command_rejected.v1"] = "session.command_rejected.v1"
    rejected_command_id: Id
    rejected_command_type: Annotated[str, Field(max_length=100)]
    reason: RejectionReason
    detail: Reason


SessionEventMessage = Annotated[
    SessionCreated
    | UserMessageAccepted
    | TurnStarted
    | AgentSwitched
    | AssistantMessageAppended
    | TurnCompleted
    | TurnFailed
    | SessionUpdated
    | SessionClosed
    | SessionReopened
    | SessionExpired
    | SessionErased
    | TurnCancelled
    | TurnStopped
    | ToolCallRequested
    | ToolApprovalRequested
    | ToolCallApproved
    | ToolCallDenied
    | ToolResultRecorded
    | ToolRoundCompleted
    | CommandRejected,
    Field(discriminator="type"),
]
