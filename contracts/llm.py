"""LLM invocation messages: requests, the token stream, and results.

The invocation id is derived from (turn id, step), so a redelivered request is recognised and
answered from the kept result instead of paying for a second call.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, StringConstraints

from contracts.agents import AgentType, MessageRole
from contracts.base import INT64_MAX, Contract, Id, Message
from contracts.limits import (
    MAX_CONTENT_LENGTH,
    MAX_DELTA_LENGTH,
    MAX_LLM_REQUEST_MESSAGES,
    MAX_REASON_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    MAX_TOOL_ARGUMENTS_LENGTH,
    MAX_TOOL_CALLS,
)

ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


# What the stores (BSON) keep: a provider's absurd count is a malformed response, not a
# document that fails the group commit of every other call's kept result.
TokenCount = Annotated[int, Field(ge=0, le=INT64_MAX)]


class Usage(Contract):
    prompt_tokens: TokenCount = 0
    completion_tokens: TokenCount = 0
    total_tokens: TokenCount = 0


class ToolCall(Contract):
    """A function call the model asked for, as in OpenAI's chat completions format."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    name: ToolName
    arguments: Annotated[str, StringConstraints(max_length=MAX_TOOL_ARGUMENTS_LENGTH)] = Field(
        description="JSON-encoded arguments, exactly as the model produced them (may be invalid)."
    )


class ToolDefinition(Contract):
    """A function tool offered to the model (OpenAI `tools[].function`)."""

    name: ToolName
    description: Annotated[str, StringConstraints(max_length=MAX_REASON_LENGTH)]
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments.")


class ChatMessage(Contract):
    role: MessageRole
    content: Annotated[str, StringConstraints(max_length=MAX_SYSTEM_PROMPT_LENGTH * 2)]
    name: Annotated[str, StringConstraints(max_length=64)] | None = None
    tool_calls: Annotated[list[ToolCall], Field(max_length=MAX_TOOL_CALLS)] = Field(
        default_factory=list, description="Assistant messages: the calls the model made."
    )
    tool_call_id: Id | None = Field(
        default=None, description="Role `tool`: the call this message answers."
    )


class LLMRequested(Message):
    """Orchestration asks for one model call for one step of a turn."""

    type: Literal["llm.requested.v1"] = "llm.requested.v1"
    tenant_id: Id
    invocation_id: Id
    turn_id: Id
    step: NonNegativeInt
    agent: AgentType
    messages: Annotated[
        list[ChatMessage],
        Field(min_length=1, max_length=MAX_LLM_REQUEST_MESSAGES),
    ]
    tools: Annotated[list[ToolDefinition], Field(max_length=MAX_TOOL_CALLS)] = Field(
        default_factory=list
    )
    model: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="Agent's model override; the provider default when absent."
    )
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: PositiveInt | None = None


class LLMTokenDelta(Message):
    """One streamed piece of the answer. `seq` starts at 0 and has no gaps per invocation."""

    type: Literal["llm.token_delta.v1"] = "llm.token_delta.v1"
    tenant_id: Id
    invocation_id: Id
    turn_id: Id
    agent: AgentType
    seq: NonNegativeInt
    delta: Annotated[str, StringConstraints(max_length=MAX_DELTA_LENGTH)]


class FinishReason(StrEnum):
    STOP = "stop"
    TOOL_CALLS = "tool_calls"
    LENGTH = "length"
    CONTENT_FILTER = "content_filter"


class LLMCompleted(Message):
    type: Literal["llm.completed.v1"] = "llm.completed.v1"
    tenant_id: Id
    invocation_id: Id
    turn_id: Id
    step: NonNegativeInt
    agent: AgentType
    content: Annotated[str, StringConstraints(max_length=MAX_CONTENT_LENGTH)]
    tool_calls: Annotated[list[ToolCall], Field(max_length=MAX_TOOL_CALLS)] = Field(
        default_factory=list
    )
    usage: Usage = Field(default_factory=Usage)
    finish_reason: FinishReason
    provider: Annotated[str, StringConstraints(max_length=64)]
    model: Annotated[str, StringConstraints(max_length=128)]


class LLMFailed(Message):
    type: Literal["llm.failed.v1"] = "llm.failed.v1"
    tenant_id: Id
    invocation_id: Id
    turn_id: Id
    step: NonNegativeInt
    agent: AgentType
    error_class: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="E.g. circuit_open, rate_limited, timeout, provider_error, bad_response."
    )
    message: Annotated[str, StringConstraints(max_length=MAX_REASON_LENGTH)] = ""
    retryable: bool
    partial_content: Annotated[str, StringConstraints(max_length=MAX_CONTENT_LENGTH)] = Field(
        default="",
        description="error_class `cancelled`: the text streamed (as deltas) before the abort.",
    )


LLMResult = Annotated[LLMCompleted | LLMFailed, Field(discriminator="type")]
