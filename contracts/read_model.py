"""The session read model: what session-commands' read side answers, as a versioned contract.

These models are what readers (the HTTP gateway, the CLI) get back from
`services.session_commands.read_model.SessionReadModel`; the JSON Schemas generated from them
are committed under `contracts/schemas/read-model/`. Internal state (`SessionState`, the
MongoDB documents) may change freely; these may not, except by adding optional fields or by a
new version (`READ_MODEL_VERSION`).
"""

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, NonNegativeInt, PositiveInt

from contracts.agents import AgentType, MessageRole
from contracts.base import Contract, Id, Metadata, UtcDatetime
from contracts.commands import AuthorName, Description, Reason, SystemPrompt, Title
from contracts.limits import MAX_AGENT_SWITCHES, MAX_CONTENT_LENGTH
from contracts.llm import ToolName
from contracts.mid_turn import MidTurnPolicy
from contracts.tools import RunsOn, ToolArguments

READ_MODEL_VERSION: Final = 1
MAX_PAGE_SIZE: Final = 500


class SessionStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"
    ERASED = "erased"


class SessionSummary(Contract):
    """One row of a session listing."""

    session_id: Id
    title: Title
    status: SessionStatus
    current_agent: AgentType
    message_count: NonNegativeInt
    created_at: UtcDatetime
    last_activity_at: UtcDatetime


class SessionView(SessionSummary):
    """One session, as a client sees it."""

    description: Description
    system_prompt: SystemPrompt
    metadata: Metadata
    updated_at: UtcDatetime
    turn_in_flight: Id | None = Field(description="The running turn's id; None when idle.")
    queued_messages: NonNegativeInt = Field(description="User messages waiting for the turn.")
    version: NonNegativeInt = Field(
        description="Grows with every change the session's writer stores; compare two reads."
    )
    mid_turn_policy: MidTurnPolicy | None = Field(
        default=None, description="The session's own mid-turn policy; None: the service's default."
    )


class SessionPage(Contract):
    """A page of sessions, newest activity first."""

    sessions: list[SessionSummary]
    page: PositiveInt
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)]
    total: NonNegativeInt


class HistoryMessage(Contract):
    """One message of a session's history; `seq` numbers the history from 1 in arrival order."""

    seq: PositiveInt
    message_id: Id
    role: MessageRole
    content: Annotated[str, Field(max_length=MAX_CONTENT_LENGTH)]
    author_name: AuthorName | None = None
    agent: AgentType | None = Field(default=None, description="The agent that wrote it.")
    turn_id: Id | None = None
    created_at: UtcDatetime
    interrupted: bool = Field(
        default=False, description="A cancelled turn's partial answer (what had been streamed)."
    )


class HistoryPage(Contract):
    """Messages in the requested order; `next_cursor` continues in the same order."""

    messages: list[HistoryMessage]
    next_cursor: PositiveInt | None = Field(
        description="Pass as the cursor (seq) for the next page; None when this was the last."
    )


class AgentSwitchView(Contract):
    from_agent: AgentType
    to_agent: AgentType
    reason: Reason
    initiated_by: Annotated[str, Field(max_length=32)]
    at: UtcDatetime


class AgentContext(Contract):
    """A session's agent: the current one, how it got there, and how many switches remain."""

    session_id: Id
    current_agent: AgentType
    switch_history: list[AgentSwitchView]
    switch_count: NonNegativeInt
    switches_left: Annotated[int, Field(ge=0, le=MAX_AGENT_SWITCHES)]


class AwaitedToolCall(Contract):
    """A call of the running turn's tool round that waits on a client: for its result (a
    `client` tool not answered yet) or for an approval. What a client that was away (a chat
    resumed with `--session`) needs to answer, since the events announcing it went by."""

    turn_id: Id
    tool_call_id: Id
    tool: ToolName
    agent: AgentType = Field(description="The agent whose model asked for the call.")
    arguments: ToolArguments
    runs_on: RunsOn
    awaiting_approval: bool = Field(
        description="True: it waits for approve/deny (any executor); False: a client tool "
        "waiting for its result."
    )


READ_MODEL_TYPES: Final = (
    SessionSummary,
    SessionView,
    SessionPage,
    HistoryMessage,
    HistoryPage,
    AgentContext,
    AwaitedToolCall,
)
