"""HTTP request and response bodies. Field types and limits come from the message contracts,
so the OpenAPI document and the commands validate the same way."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from contracts.agents import AgentType
from contracts.base import Id, Metadata
from contracts.commands import AuthorName, Content, Description, Reason, SystemPrompt, Title
from contracts.mid_turn import MidTurnPolicy
from contracts.read_model import HistoryMessage, SessionView
from contracts.tools import ToolResultContent


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateSessionRequest(Request):
    """The original's CreateSessionRequest(session_id, system_prompt), plus the rest."""

    session_id: Id | None = Field(None, description="Chosen by the client; default: generated.")
    # Optional[str] = None in the original: its clients send null for "no system prompt".
    system_prompt: SystemPrompt | None = Field("", description="null is the same as empty.")
    title: Title = ""
    description: Description = ""
    metadata: Metadata = Field(default_factory=dict)
    initial_agent: AgentType = AgentType.ORCHESTRATOR
    mid_turn_policy: MidTurnPolicy | None = Field(
        None, description="What a message sent during a running turn does (default: queue)."
    )


class UpdateSessionRequest(Request):
    title: Title | None = None
    description: Description | None = None
    mid_turn_policy: MidTurnPolicy | None = None

    @model_validator(mode="after")
    def _something_to_update(self) -> "UpdateSessionRequest":
        if self.title is None and self.description is None and self.mid_turn_policy is None:
            raise ValueError("give a title, a description, a mid_turn_policy or several")
        return self


class CloseSessionRequest(Request):
    reason: Reason = ""


class EraseSessionRequest(Request):
    reason: Reason = ""


class CancelTurnRequest(Request):
    turn_id: Id | None = Field(
        None,
        description="The turn to stop (may be a queued message's turn); default: the running one.",
    )
    reason: Reason = ""


class ToolResultRequest(Request):
    """The result of a client-executed tool call (`tool_call_requested`, runs_on `client`)."""

    content: ToolResultContent
    # Strict: lax mode would read "yes", "false" or 1 as a boolean, where every other wrong
    # JSON type of a request is a 422 (docs/gateway.md, Errors).
    is_error: StrictBool = Field(False, description="The tool failed; `content` says how.")
    turn_id: Id | None = Field(None, description="The call's turn; default: the running one.")


class ToolApprovalRequest(Request):
    turn_id: Id | None = Field(None, description="The call's turn; default: the running one.")


class ToolDenialRequest(Request):
    reason: Reason = Field("", description="The model reads `denied: <reason>`.")
    turn_id: Id | None = Field(None, description="The call's turn; default: the running one.")


class SubmitMessageRequest(Request):
    content: Content
    message_id: Id | None = Field(None, description="Chosen by the client; default: derived.")
    author_name: AuthorName | None = None


class SwitchAgentRequest(Request):
    agent: AgentType
    reason: Reason = ""


class MessageStatus(StrEnum):
    PENDING = "pending"
    """Published; session-commands has not decided yet within the gateway's wait."""
    ACCEPTED = "accepted"
    """Accepted; its turn runs."""
    QUEUED = "queued"
    """Accepted; waits for the running turn to finish."""
    COMPLETED = "completed"
    """The turn finished; `answer` holds the assistant message."""
    CANCELLED = "cancelled"
    """The turn was stopped (CancelTurn, or a message under `interrupt`/`replace`); `answer`
    holds the text streamed before the stop, marked interrupted, if there was any."""
    FAILED = "failed"
    """The turn failed; `failure` says why."""


class TurnFailure(BaseModel):
    error_class: str
    reason: str


class MessageLinks(BaseModel):
    session: str
    history: str = Field(description="The history page starting at this message.")


class MessageReceipt(BaseModel):
    """What a submitted message became. 202 while its turn runs, 200 once it finished."""

    command_id: Id
    session_id: Id
    message_id: Id
    turn_id: Id = Field(description="The turn answering this message (known up front).")
    status: MessageStatus
    seq: int | None = Field(None, description="Its place in the history, once accepted.")
    answer: HistoryMessage | None = None
    failure: TurnFailure | None = None
    links: MessageLinks


class CommandReceipt(BaseModel):
    """A session command that session-commands has not decided on within the wait (202)."""

    command_id: Id
    session_id: Id
    status: MessageStatus = MessageStatus.PENDING
    session: SessionView | None = None


class AgentInfo(BaseModel):
    name: AgentType
    description: str
    handoffs: list[AgentType]


class AgentCatalogueView(BaseModel):
    agents: list[AgentInfo]


class Health(BaseModel):
    status: str
    checks: dict[str, bool] = Field(default_factory=dict)
