"""Internal commands on the `turns` topic: from agent-orchestration and the expiry job.

Upstream publishers are denied write access to this topic by ACL in production. Ids are
derived deterministically (contracts.base.derive_id) so a redelivered input repeats them.
"""

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt

from contracts.agents import AgentType
from contracts.base import Id, Message, UtcDatetime
from contracts.commands import Content, Reason
from contracts.limits import MAX_CONTENT_LENGTH, MAX_TOOL_CALLS, MAX_TOOL_CALLS_PER_TURN
from contracts.llm import Usage
from contracts.tools import AssistantText, RequestedToolCall, RunsOn, ToolResultContent


class TurnCommand(Message):
    tenant_id: Id
    turn_id: Id
    step: NonNegativeInt = Field(description="Hop within the turn: 0, then +1 per agent switch.")
    invocation_id: Id = Field(description="The LLM invocation this command follows from.")


class SwitchAgentForTurn(TurnCommand):
    """Hand the running turn to another agent (the orchestrator's `switch_agent` tool call)."""

    type: Literal["turn.switch_agent.v1"] = "turn.switch_agent.v1"
    from_agent: AgentType
    target_agent: AgentType
    reason: Reason = ""


class CompleteTurn(TurnCommand):
    """Append the assistant's answer and free the session for the next turn."""

    type: Literal["turn.complete.v1"] = "turn.complete.v1"
    agent: AgentType
    content: Content
    note: Reason | None = Field(
        default=None, description="Set when orchestration overrode the model, e.g. hop bound."
    )
    usage: Usage | None = None


class FailTurn(TurnCommand):
    """End the turn unsuccessfully; the session becomes idle again."""

    type: Literal["turn.fail.v1"] = "turn.fail.v1"
    agent: AgentType
    error_class: Annotated[str, Field(max_length=100)]
    reason: Reason = ""
    partial_content: Annotated[str, Field(max_length=MAX_CONTENT_LENGTH)] = Field(
        default="", description="A cancelled step's streamed text (LLMFailed.partial_content)."
    )


class RequestToolCalls(TurnCommand):
    """The step's model called tools: the turn waits for their results (orchestration)."""

    type: Literal["turn.request_tool_calls.v1"] = "turn.request_tool_calls.v1"
    agent: AgentType
    assistant_content: AssistantText = ""
    calls: Annotated[list[RequestedToolCall], Field(min_length=1, max_length=MAX_TOOL_CALLS)]
    max_tool_calls: Annotated[int, Field(ge=1, le=MAX_TOOL_CALLS_PER_TURN)] | None = Field(
        default=None,
        description="Orchestration's per-turn bound: calls beyond it are answered at once with "
        "an error result instead of running (None: only MAX_TOOL_CALLS_PER_TURN applies).",
    )


class RecordToolResult(Message):
    """The result of an MCP tool call, published by tool-invocation. Idempotent by tool_call_id."""

    type: Literal["turn.record_tool_result.v1"] = "turn.record_tool_result.v1"
    tenant_id: Id
    turn_id: Id
    tool_call_id: Id
    content: ToolResultContent
    is_error: bool = False
    source: RunsOn = Field(description="The executor: `mcp:<server>`.")


class ExpireToolCalls(Message):
    """Published by the expiry job for a turn whose tool calls outlived their deadline."""

    type: Literal["turn.expire_tool_calls.v1"] = "turn.expire_tool_calls.v1"
    tenant_id: Id
    turn_id: Id
    step: NonNegativeInt


class ExpireSession(Message):
    """Published by the expiry job; applied by the partition owner in order."""

    type: Literal["session.expire.v1"] = "session.expire.v1"
    tenant_id: Id
    last_activity_at: UtcDatetime = Field(description="The inactivity the job observed.")


InternalCommand = Annotated[
    SwitchAgentForTurn
    | CompleteTurn
    | FailTurn
    | ExpireSession
    | RequestToolCalls
    | RecordToolResult
    | ExpireToolCalls,
    Field(discriminator="type"),
]
