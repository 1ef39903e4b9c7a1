"""What the audit trail says about tool calls: the model's calls (RequestToolCalls), the calls
announced (ToolCallRequested / ToolApprovalRequested), approvals and denials, results (from the
client: SubmitToolResult; from tool-invocation: RecordToolResult; accepted: ToolResultRecorded),
the round's end (ToolRoundCompleted) and its deadline (ExpireToolCalls). docs/audit.md has the
table.

Arguments and results are content: what a person's files or a tool's output hold is redacted
like a message (redaction.py). ToolRoundCompleted carries copies of results audited on their
own facts, so only its size is recorded, not the text a second time.
"""

import json

from contracts.audit import AuditOutcome
from contracts.commands import ApproveToolCall, DenyToolCall, SubmitToolResult
from contracts.session_events import (
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
)
from contracts.turns import ExpireToolCalls, RecordToolResult, RequestToolCalls
from services.audit.fact_view import ContentPiece, FactView

ToolFact = (
    SubmitToolResult
    | ApproveToolCall
    | DenyToolCall
    | RequestToolCalls
    | RecordToolResult
    | ExpireToolCalls
    | ToolCallRequested
    | ToolApprovalRequested
    | ToolCallApproved
    | ToolCallDenied
    | ToolResultRecorded
    | ToolRoundCompleted
)


def tool_view(message: ToolFact) -> FactView:
    match message:
        case SubmitToolResult() | RecordToolResult():
            source = message.source if isinstance(message, RecordToolResult) else "client"
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "tool_call_id": message.tool_call_id,
                    "is_error": message.is_error,
                    "source": source,
                },
                content=message.content,
            )
        case ApproveToolCall() | DenyToolCall():
            reason = message.reason if isinstance(message, DenyToolCall) else None
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "tool_call_id": message.tool_call_id,
                    "requested_by": message.requested_by,
                    "reason": reason,
                },
            )
        case RequestToolCalls():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                invocation_id=message.invocation_id,
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "tools": ",".join(call.tool for call in message.calls),
                    "refused": sum(call.refusal is not None for call in message.calls),
                },
                content=message.assistant_content or None,
                parts=tuple(
                    ContentPiece(f"calls[{i}].arguments", call.arguments, call.tool)
                    for i, call in enumerate(message.calls)
                ),
            )
        case ExpireToolCalls():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={"step": message.step},
            )
        case ToolCallRequested() | ToolApprovalRequested():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "tool_call_id": message.tool_call_id,
                    "tool": message.tool,
                    "runs_on": message.runs_on,
                    "step": message.step,
                    "agent": message.agent.value,
                    "deadline": message.deadline.isoformat(),
                },
                parts=(
                    ContentPiece(
                        "arguments", json.dumps(message.arguments, ensure_ascii=False), message.tool
                    ),
                ),
            )
        case ToolCallApproved() | ToolCallDenied():
            reason = message.reason if isinstance(message, ToolCallDenied) else None
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "tool_call_id": message.tool_call_id,
                    "tool": message.tool,
                    "requested_by": message.requested_by,
                    "reason": reason,
                },
            )
        case ToolResultRecorded():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "tool_call_id": message.tool_call_id,
                    "tool": message.tool,
                    "is_error": message.is_error,
                    "source": message.source,
                },
                content=message.content,
            )
        case ToolRoundCompleted():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "rounds": len(message.rounds),
                    "tool_calls": sum(len(r.calls) for r in message.rounds),
                },
            )
