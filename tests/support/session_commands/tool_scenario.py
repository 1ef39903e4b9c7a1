"""Builders for the tool-call decider tests (scenario.py holds the others)."""

from typing import Any

from contracts.commands import ApproveToolCall, DenyToolCall, SubmitToolResult
from contracts.tools import RequestedToolCall
from contracts.turns import ExpireToolCalls, RecordToolResult, RequestToolCalls
from services.session_commands.domain.state import SessionState
from tests.support.session_commands.scenario import SESSION, TENANT, next_id


def tool_call(
    tool_call_id: str, tool: str = "read_file", arguments: str = '{"path": "a.py"}', **fields: Any
) -> RequestedToolCall:
    return RequestedToolCall(
        **{
            "tool_call_id": tool_call_id,
            "tool": tool,
            "arguments": arguments,
            "runs_on": "client",
            **fields,
        }
    )


def request_tools(
    state: SessionState, *calls: RequestedToolCall, **fields: Any
) -> RequestToolCalls:
    assert state.turn is not None, "no turn in flight in the given state"
    return RequestToolCalls(
        **{
            "id": next_id("turn-cmd"),
            "session_id": SESSION,
            "tenant_id": TENANT,
            "turn_id": state.turn.turn_id,
            "step": state.turn.step,
            "invocation_id": next_id("inv"),
            "agent": state.turn.agent,
            "calls": list(calls),
            **fields,
        }
    )


def _command_fields(tool_call_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": next_id(),
        "session_id": SESSION,
        "tenant_id": TENANT,
        "tool_call_id": tool_call_id,
        **fields,
    }


def submit_result(tool_call_id: str, content: str = "data", **fields: Any) -> SubmitToolResult:
    return SubmitToolResult(**_command_fields(tool_call_id, {"content": content, **fields}))


def approve(tool_call_id: str, **fields: Any) -> ApproveToolCall:
    return ApproveToolCall(**_command_fields(tool_call_id, fields))


def deny(tool_call_id: str, reason: str = "no", **fields: Any) -> DenyToolCall:
    return DenyToolCall(**_command_fields(tool_call_id, {"reason": reason, **fields}))


def record_result(
    state: SessionState, tool_call_id: str, source: str, content: str = "ok", **fields: Any
) -> RecordToolResult:
    assert state.turn is not None
    return RecordToolResult(
        **{
            "id": next_id("record"),
            "session_id": SESSION,
            "tenant_id": TENANT,
            "turn_id": state.turn.turn_id,
            "tool_call_id": tool_call_id,
            "content": content,
            "source": source,
            **fields,
        }
    )


def expire_tools(state: SessionState, **fields: Any) -> ExpireToolCalls:
    assert state.turn is not None
    return ExpireToolCalls(
        **{
            "id": next_id("expire-tools"),
            "session_id": SESSION,
            "tenant_id": TENANT,
            "turn_id": state.turn.turn_id,
            "step": state.turn.step,
            **fields,
        }
    )
