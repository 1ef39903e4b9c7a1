"""External commands: what upstream systems publish to the `commands` topic.

Every command carries the publisher's tenant and its own id; the id is the idempotency key (a
command redelivered or re-published with the same id has its effect once).
"""

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, StringConstraints, model_validator

from contracts.agents import AgentName, AgentType
from contracts.base import Id, Message, Metadata
from contracts.limits import (
    MAX_AUTHOR_NAME_LENGTH,
    MAX_CONTENT_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_REASON_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TITLE_LENGTH,
)
from contracts.mid_turn import MidTurnPolicy
from contracts.tools import ToolResultContent

Title = Annotated[str, StringConstraints(max_length=MAX_TITLE_LENGTH)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
SystemPrompt = Annotated[str, StringConstraints(max_length=MAX_SYSTEM_PROMPT_LENGTH)]
Content = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONTENT_LENGTH)]
Reason = Annotated[str, StringConstraints(max_length=MAX_REASON_LENGTH)]
AuthorName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_AUTHOR_NAME_LENGTH)]


class Command(Message):
    tenant_id: Id = Field(description="The publishing tenant; must own the session.")


class CreateSession(Command):
    """Open a new conversation. Re-creating an existing session id is rejected."""

    type: Literal["session.create.v1"] = "session.create.v1"
    title: Title = ""
    description: Description = ""
    system_prompt: SystemPrompt = ""
    initial_agent: AgentType = AgentType.ORCHESTRATOR
    metadata: Metadata = Field(default_factory=dict)
    mid_turn_policy: MidTurnPolicy | None = Field(
        default=None,
        description="What a message during a running turn does; the service's default if absent.",
    )


class SubmitUserMessage(Command):
    """A user's turn. Starts a turn when the session is idle, else follows the mid-turn policy."""

    type: Literal["session.submit_user_message.v1"] = "session.submit_user_message.v1"
    message_id: Id = Field(description="Client-chosen id of the chat message.")
    content: Content
    author_name: AuthorName | None = None


class SwitchAgent(Command):
    """A user's explicit switch. Counts towards the session's cap of 10 switches. An agent
    name the runtime does not know is refused with CommandRejected(invalid_agent)."""

    type: Literal["session.switch_agent.v1"] = "session.switch_agent.v1"
    target_agent: AgentName
    reason: Reason = ""


class UpdateSession(Command):
    """Change title, description and/or mid-turn policy; fields left out keep their value."""

    # The rule of `_something_to_update` in the published schema too: a publisher that
    # validates there (contracts/README.md) learns of it instead of reading a dead letter.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"type": "string"}}}
                for field in ("title", "description", "mid_turn_policy")
            ]
        }
    )

    type: Literal["session.update.v1"] = "session.update.v1"
    title: Title | None = None
    description: Description | None = None
    mid_turn_policy: MidTurnPolicy | None = None

    @model_validator(mode="after")
    def _something_to_update(self) -> "UpdateSession":
        if self.title is None and self.description is None and self.mid_turn_policy is None:
            raise ValueError("give a title, a description, a mid_turn_policy or several")
        return self


class CloseSession(Command):
    """Mark the session inactive. A closed session refuses further commands."""

    type: Literal["session.close.v1"] = "session.close.v1"
    reason: Reason = ""


class ReopenSession(Command):
    """Make a closed session active again (the seed's active/inactive toggle)."""

    type: Literal["session.reopen.v1"] = "session.reopen.v1"


class RetryTurn(Command):
    """Run a failed turn again (a "regenerate" button): the same user message, a new turn.

    Only the session's most recent turn, only when it failed and no turn started since. The new
    turn's id is derived from the failed one, so a redelivered or re-sent command starts it
    once; a second, different RetryTurn for the same failed turn is refused (`not_retryable`).
    """

    type: Literal["session.retry_turn.v1"] = "session.retry_turn.v1"
    turn_id: Id = Field(description="The failed turn, as named by its TurnFailed.")


class CancelTurn(Command):
    """Stop the session's running turn (or the turn of `turn_id`, which may be the turn a queued
    message would start). A turn that is not running is refused with `turn_not_running`."""

    type: Literal["session.cancel_turn.v1"] = "session.cancel_turn.v1"
    turn_id: Id | None = Field(
        default=None, description="The turn to stop; the running one if absent."
    )
    requested_by: AuthorName | None = Field(
        default=None, description="Who asked (a user name, an operator); for the audit trail."
    )
    reason: Reason = ""


class EraseSession(Command):
    """Erase the session's content on request (a person's right to erasure).

    The message contents, title, description, system prompt and metadata are erased; the
    skeleton stays (ids, seqs, tenant, counters) with status `erased`, which refuses every
    later command, so that a replay of earlier commands cannot bring content back. A running
    turn fails (`session_erased`). Idempotent: erasing an erased session changes nothing.
    """

    type: Literal["session.erase.v1"] = "session.erase.v1"
    requested_by: AuthorName | None = Field(
        default=None, description="Who asked (a user name, an operator); for the audit trail."
    )
    reason: Reason = ""


class ToolCallCommand(Command):
    turn_id: Id | None = Field(
        default=None, description="The turn of the call; the running one if absent."
    )
    tool_call_id: Id = Field(description="As named by tool.call_requested.v1.")


class SubmitToolResult(ToolCallCommand):
    """The result of a client-executed tool call. Idempotent by tool_call_id: the first result
    counts, a repeat changes nothing; a call that is not waiting for a client result is refused
    with `tool_call_not_pending`."""

    type: Literal["session.submit_tool_result.v1"] = "session.submit_tool_result.v1"
    content: ToolResultContent
    # Strict: the schema says boolean; lax pydantic also read 0, 1.0, "yes" from a publisher.
    is_error: StrictBool = False


class ApproveToolCall(ToolCallCommand):
    """Let a `needs_approval` call run (tool.approval_requested.v1)."""

    type: Literal["session.approve_tool_call.v1"] = "session.approve_tool_call.v1"
    requested_by: AuthorName | None = None


class DenyToolCall(ToolCallCommand):
    """Refuse a `needs_approval` call: it is not run, the model reads `denied: <reason>`."""

    type: Literal["session.deny_tool_call.v1"] = "session.deny_tool_call.v1"
    requested_by: AuthorName | None = None
    reason: Reason = ""


ExternalCommand = Annotated[
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
    | DenyToolCall,
    Field(discriminator="type"),
]
