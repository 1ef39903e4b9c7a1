"""Shared parts of the tool-call messages: where a tool runs, its arguments, its result, and
the exchange of one tool round as it is carried back into the prompt.

A tool call's id is derived by orchestration from the LLM invocation and the call's position
(`tool_call_id_for`), never taken from the model: it is unique per turn, a valid `Id`, and at
most 40 characters (what OpenAI accepts as a tool call id in a prompt).
"""

import json
import uuid
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, StringConstraints

from contracts.agents import AgentType
from contracts.base import INT64_MAX, INT64_MIN, Contract, Id
from contracts.limits import (
    MAX_CONTENT_LENGTH,
    MAX_RUNS_ON_LENGTH,
    MAX_TOOL_ARGUMENTS_DEPTH,
    MAX_TOOL_ARGUMENTS_LENGTH,
    MAX_TOOL_RESULT_LENGTH,
)
from contracts.llm import ToolName

CLIENT: Final = "client"
"""The upstream client runs the tool and answers with SubmitToolResult."""
MCP_PREFIX: Final = "mcp:"
"""`mcp:<server>`: tool-invocation runs it on that MCP server and answers with RecordToolResult."""

MCP_SERVER_NAME: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
"""A server of tool-invocation's MCP servers file (`[servers.<name>]`). `RunsOn` on the wire
stays wider (what was recorded before stays readable); the catalogue is held to this."""

RunsOn = Annotated[
    str,
    StringConstraints(
        max_length=MAX_RUNS_ON_LENGTH, pattern=r"^(client|mcp:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
    ),
    Field(description='Who executes the tool: "client" or "mcp:<server>".'),
]


def _bounded_arguments(value: dict[str, Any]) -> dict[str, Any]:
    # First, and without recursion: json.dumps and _storable recurse once per level.
    if _deeper_than(value, MAX_TOOL_ARGUMENTS_DEPTH):
        raise ValueError(f"arguments nested deeper than {MAX_TOOL_ARGUMENTS_DEPTH} levels")
    if len(json.dumps(value, ensure_ascii=False)) > MAX_TOOL_ARGUMENTS_LENGTH:
        raise ValueError(f"arguments longer than {MAX_TOOL_ARGUMENTS_LENGTH} characters as JSON")
    if not _storable(value):
        # A model may write any JSON number; the session store (BSON) keeps 64-bit integers,
        # and one document it cannot encode fails the whole group commit it is part of.
        raise ValueError("an integer in the arguments does not fit in 64 bits")
    return value


def _deeper_than(value: object, levels: int) -> bool:
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > levels:
            return True
        pending.extend((child, level + 1) for child in children)
    return False


def _storable(value: object) -> bool:
    if isinstance(value, dict):
        return all(_storable(item) for item in value.values())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return INT64_MIN <= value <= INT64_MAX
    return True


ToolArguments = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_arguments),
    Field(description="The call's arguments: a JSON object valid against the tool's schema."),
]
RawArguments = Annotated[
    str,
    StringConstraints(max_length=MAX_TOOL_ARGUMENTS_LENGTH),
    Field(description="The arguments as the model wrote them (JSON text, possibly invalid)."),
]
ToolResultContent = Annotated[
    str,
    StringConstraints(max_length=MAX_TOOL_RESULT_LENGTH),
    Field(description="The tool's output as text (errors too, with is_error=true)."),
]
AssistantText = Annotated[str, StringConstraints(max_length=MAX_CONTENT_LENGTH)]

_TOOL_CALL_NAMESPACE: Final = uuid.UUID("0b6f8f0e-55a1-4f39-a0d3-6c1b0f2d7e41")


def tool_call_id_for(invocation_id: str, index: int) -> str:
    """The id of the `index`-th tool call of an LLM invocation: `call_<32 hex>`."""
    return "call_" + uuid.uuid5(_TOOL_CALL_NAMESPACE, f"{invocation_id}\x1f{index}").hex


def denial_content(reason: str) -> str:
    """What the model reads for a denied call (one wording, in the prompt and in the audit)."""
    return f"denied: {reason}" if reason else "denied"


class RequestedToolCall(Contract):
    """One call of a RequestToolCalls command, as orchestration read it from the model."""

    tool_call_id: Id
    tool: ToolName
    arguments: RawArguments
    runs_on: RunsOn
    needs_approval: bool = False
    idempotent: bool = False
    refusal: Annotated[str, StringConstraints(max_length=1_000)] | None = Field(
        default=None,
        description="Set when the call cannot run (unknown tool, arguments not valid against "
        "its schema): recorded at once as an error result for the model, never executed.",
    )


class ToolCallOutcome(Contract):
    """A call of a finished tool round with its result, as the next prompt carries it."""

    tool_call_id: Id
    tool: ToolName
    arguments: RawArguments
    content: ToolResultContent
    is_error: bool = False


class ToolRound(Contract):
    """One model answer that called tools, and the results of all its calls."""

    step: Annotated[int, Field(ge=0)] = Field(description="The step whose model asked.")
    agent: AgentType | None = Field(
        default=None,
        description="The agent whose model asked (a turn handed off later shows each round "
        "under its own agent); absent on rounds recorded before it was carried.",
    )
    assistant_content: AssistantText = Field(
        default="", description="Text the model wrote alongside its tool calls."
    )
    calls: Annotated[list[ToolCallOutcome], Field(min_length=1)]
