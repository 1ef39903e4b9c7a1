"""The live stream contract (Server-Sent Events of the gateway): which pipeline message becomes
which SSE event, and the payloads of the stream's own control events.

One table, `STREAM_EVENTS`: a pipeline message type → its SSE `event:` name. The SSE `data:` is
the message's JSON without `HIDDEN_FIELDS` (the tenant is the caller's own; `context` and a tool
round's `rounds` are the prompt material orchestration needs, not something a client shows). Adding a type to the
stream is one line here (and `make contracts` writes its schema under schemas/stream/).
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints

from contracts.base import Contract, Message
from contracts.llm import LLMTokenDelta
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)

STREAM_EVENTS: Final[Mapping[type[Message], str]] = {
    SessionCreated: "session_created",
    UserMessageAccepted: "message_accepted",
    TurnStarted: "turn_started",
    AgentSwitched: "agent_switched",
    LLMTokenDelta: "token",
    AssistantMessageAppended: "assistant_message",
    TurnCompleted: "turn_completed",
    TurnFailed: "turn_failed",
    TurnCancelled: "turn_cancelled",
    TurnStopped: "turn_stopped",
    CommandRejected: "command_rejected",
    SessionUpdated: "session_updated",
    SessionClosed: "session_closed",
    SessionReopened: "session_reopened",
    SessionExpired: "session_expired",
    SessionErased: "session_erased",
    ToolCallRequested: "tool_call_requested",
    ToolApprovalRequested: "tool_approval_requested",
    ToolCallApproved: "tool_call_approved",
    ToolCallDenied: "tool_call_denied",
    ToolResultRecorded: "tool_result_recorded",
    ToolRoundCompleted: "tool_round_completed",
}

HIDDEN_FIELDS: Final = frozenset({"tenant_id", "context", "rounds"})

# The SSE events that end `POST /v1/messages/stream` when they carry its turn id. A cancelled
# turn ends at `turn_stopped`, after its interrupted text (`assistant_message`) was kept.
TURN_END_EVENTS: Final = frozenset({"turn_completed", "turn_failed", "turn_stopped"})

# ASCII digits: pydantic's regex engine, like Python's, lets \d match other scripts' digits.
CURSOR_PATTERN: Final = r"v1\.[0-9]{1,5}\.[0-9]{1,19}\.[0-9]{1,19}"
Cursor = Annotated[str, StringConstraints(pattern=rf"^{CURSOR_PATTERN}$")]


class StreamStarted(Contract):
    """First event of every stream; its `id` is where a reconnect resumes if nothing else came."""

    type: Literal["stream_started"] = "stream_started"
    session_id: str
    resumed: bool = Field(description="True when the stream continues from a Last-Event-ID.")


class DropReason(StrEnum):
    SLOW_CLIENT = "slow_client"
    READER_RESTARTED = "reader_restarted"


class StreamDropped(Contract):
    """The gateway ends this stream; reconnect with the last `id` (EventSource does so itself)."""

    type: Literal["stream_dropped"] = "stream_dropped"
    session_id: str
    reason: DropReason


CONTROL_EVENTS: Final[Mapping[str, type[Contract]]] = {
    "stream_started": StreamStarted,
    "stream_dropped": StreamDropped,
}


def stream_payload(message: Message) -> dict[str, Any]:
    """The SSE `data:` of a pipeline message: its JSON without the hidden fields."""
    return message.model_dump(mode="json", exclude=set(HIDDEN_FIELDS))


def stream_schema(name: str, model: type[Contract]) -> dict[str, Any]:
    """JSON Schema of one SSE event's data (a message's schema without the hidden fields)."""
    schema = model.model_json_schema(mode="serialization")
    for hidden in HIDDEN_FIELDS:
        schema.get("properties", {}).pop(hidden, None)
        if hidden in schema.get("required", []):
            schema["required"].remove(hidden)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://agent-runtime.example/schemas/stream/{name}.json",
        "title": name,
        **{k: v for k, v in schema.items() if k != "title"},
    }
