"""One valid instance of every message type, for round-trip and drift tests."""

from datetime import UTC, datetime

from contracts.agents import AgentType, MessageRole
from contracts.audit import AuditOutcome, AuditRecord, RedactedContent, RedactionMode
from contracts.base import Message
from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CloseSession,
    CreateSession,
    DenyToolCall,
    EraseSession,
    ReopenSession,
    RetryTurn,
    SubmitToolResult,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.dead_letters import DeadLetter, DeadLetterReason, OriginalHeader
from contracts.llm import (
    ChatMessage,
    FinishReason,
    LLMCompleted,
    LLMFailed,
    LLMRequested,
    LLMTokenDelta,
    ToolCall,
    ToolDefinition,
    Usage,
)
from contracts.mid_turn import CancellationReason, MidTurnPolicy
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    ContextMessage,
    ConversationContext,
    RejectionReason,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    SwitchInitiator,
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
from contracts.tools import RequestedToolCall, ToolCallOutcome, ToolRound
from contracts.turns import (
    CompleteTurn,
    ExpireSession,
    ExpireToolCalls,
    FailTurn,
    RecordToolResult,
    RequestToolCalls,
    SwitchAgentForTurn,
)

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
S = {"session_id": "s-1", "occurred_at": AT}
T = {**S, "tenant_id": "acme"}
TURN = {**T, "turn_id": "turn-1", "step": 0, "invocation_id": "inv-1"}
CONTEXT = ConversationContext(
    system_prompt="Be brief.",
    messages=[ContextMessage(seq=1, role=MessageRole.USER, content="Fix the crash")],
    switch_count=0,
)
SWITCH_TOOL = ToolDefinition(
    name="switch_agent",
    description="Hand the turn to another agent.",
    parameters={"type": "object", "properties": {"target": {"type": "string"}}},
)


def every_message() -> list[Message]:
    return [
        CreateSession(id="c-1", **T, title="Demo", initial_agent=AgentType.ORCHESTRATOR),
        SubmitUserMessage(id="c-2", **T, message_id="m-1", content="Hello", author_name="Ann"),
        SwitchAgent(id="c-3", **T, target_agent=AgentType.CODER, reason="code"),
        UpdateSession(id="c-4", **T, title="New title"),
        CloseSession(id="c-5", **T, reason="done"),
        ReopenSession(id="c-6", **T),
        RetryTurn(id="c-7", **T, turn_id="turn-1"),
        CancelTurn(id="c-9", **T, turn_id="turn-1", requested_by="Ann", reason="wrong answer"),
        UpdateSession(id="c-8", **T, mid_turn_policy=MidTurnPolicy.INTERRUPT),
        EraseSession(id="c-10", **T, requested_by="operator", reason="erasure request"),
        SwitchAgentForTurn(
            id="i-1", **TURN, from_agent=AgentType.ORCHESTRATOR, target_agent=AgentType.DEBUG
        ),
        CompleteTurn(id="i-2", **TURN, agent=AgentType.DEBUG, content="Fixed", usage=Usage()),
        FailTurn(id="i-3", **TURN, agent=AgentType.DEBUG, error_class="timeout"),
        ExpireSession(id="i-4", **T, last_activity_at=AT),
        SubmitToolResult(id="c-11", **T, tool_call_id="call_1", content="print('hi')"),
        ApproveToolCall(
            id="c-12", **T, turn_id="turn-1", tool_call_id="call_2", requested_by="Ann"
        ),
        DenyToolCall(id="c-13", **T, tool_call_id="call_2", reason="not now"),
        RequestToolCalls(
            id="i-5",
            **TURN,
            agent=AgentType.CODER,
            calls=[
                RequestedToolCall(
                    tool_call_id="call_1",
                    tool="read_file",
                    arguments='{"path": "app.py"}',
                    runs_on="client",
                ),
                RequestedToolCall(
                    tool_call_id="call_2",
                    tool="run_command",
                    arguments='{"command": "pytest"}',
                    runs_on="mcp:shell",
                    needs_approval=True,
                ),
            ],
        ),
        RecordToolResult(
            id="i-6", **T, turn_id="turn-1", tool_call_id="call_2", content="ok", source="mcp:shell"
        ),
        ExpireToolCalls(id="i-7", **T, turn_id="turn-1", step=1),
        ToolCallRequested(
            id="e-15",
            **T,
            turn_id="turn-1",
            tool_call_id="call_1",
            tool="read_file",
            step=1,
            agent=AgentType.CODER,
            arguments={"path": "app.py"},
            runs_on="client",
            deadline=AT,
        ),
        ToolApprovalRequested(
            id="e-16",
            **T,
            turn_id="turn-1",
            tool_call_id="call_2",
            tool="run_command",
            step=1,
            agent=AgentType.CODER,
            arguments={"command": "pytest"},
            runs_on="mcp:shell",
            deadline=AT,
        ),
        ToolCallApproved(
            id="e-17", **T, turn_id="turn-1", tool_call_id="call_2", tool="run_command"
        ),
        ToolCallDenied(
            id="e-18",
            **T,
            turn_id="turn-1",
            tool_call_id="call_2",
            tool="run_command",
            reason="not now",
        ),
        ToolResultRecorded(
            id="e-19",
            **T,
            turn_id="turn-1",
            tool_call_id="call_1",
            tool="read_file",
            content="print('hi')",
            is_error=False,
            source="client",
        ),
        ToolRoundCompleted(
            id="e-20",
            **T,
            turn_id="turn-1",
            step=2,
            agent=AgentType.CODER,
            context=CONTEXT,
            rounds=[
                ToolRound(
                    step=1,
                    calls=[
                        ToolCallOutcome(
                            tool_call_id="call_1",
                            tool="read_file",
                            arguments='{"path": "app.py"}',
                            content="print('hi')",
                        )
                    ],
                )
            ],
        ),
        SessionCreated(
            id="e-1",
            **T,
            title="",
            description="",
            system_prompt="",
            agent=AgentType.ASK,
            metadata={"channel": "web", "priority": 2},
        ),
        UserMessageAccepted(id="e-2", **T, message_id="m-1", seq=1, content="Hi", queued=False),
        TurnStarted(
            id="e-3",
            **T,
            turn_id="turn-1",
            step=0,
            agent=AgentType.ORCHESTRATOR,
            user_message_id="m-1",
            context=CONTEXT,
        ),
        AgentSwitched(
            id="e-4",
            **T,
            from_agent=AgentType.ORCHESTRATOR,
            to_agent=AgentType.DEBUG,
            reason="bug",
            switch_count=1,
            initiated_by=SwitchInitiator.ORCHESTRATION,
            turn_id="turn-1",
            step=1,
            context=CONTEXT,
        ),
        AssistantMessageAppended(
            id="e-5",
            **T,
            message_id="a-1",
            seq=2,
            turn_id="turn-1",
            agent=AgentType.DEBUG,
            content="Try this",
        ),
        TurnCompleted(id="e-6", **T, turn_id="turn-1", agent=AgentType.DEBUG, steps=2),
        TurnFailed(
            id="e-7", **T, turn_id="turn-1", agent=AgentType.DEBUG, error_class="x", reason="y"
        ),
        SessionUpdated(id="e-8", **T, title="t", description="d"),
        SessionClosed(id="e-9", **T, reason=""),
        SessionReopened(id="e-10", **T),
        SessionExpired(id="e-11", **T, last_activity_at=AT),
        SessionErased(id="e-14", **T, requested_by="operator", reason="erasure request"),
        TurnCancelled(
            id="e-13",
            **T,
            turn_id="turn-1",
            user_message_id="m-1",
            agent=AgentType.DEBUG,
            step=1,
            reason=CancellationReason.CANCELLED,
            requested_by="Ann",
        ),
        TurnStopped(
            id="e-14",
            **T,
            turn_id="turn-1",
            agent=AgentType.DEBUG,
            steps=2,
            reason=CancellationReason.CANCELLED,
            partial_message_id="a-1",
        ),
        CommandRejected(
            id="e-12",
            **T,
            rejected_command_id="c-9",
            rejected_command_type="session.close.v1",
            reason=RejectionReason.SESSION_CLOSED,
            detail="closed",
        ),
        LLMRequested(
            id="r-1",
            **T,
            invocation_id="inv-1",
            turn_id="turn-1",
            step=0,
            agent=AgentType.ORCHESTRATOR,
            messages=[ChatMessage(role=MessageRole.USER, content="Fix the crash")],
            tools=[SWITCH_TOOL],
            temperature=0.2,
        ),
        LLMTokenDelta(
            id="d-1",
            **T,
            invocation_id="inv-1",
            turn_id="turn-1",
            agent=AgentType.ASK,
            seq=0,
            delta="Hel",
        ),
        LLMCompleted(
            id="r-2",
            **T,
            invocation_id="inv-1",
            turn_id="turn-1",
            step=0,
            agent=AgentType.ORCHESTRATOR,
            content="",
            tool_calls=[ToolCall(id="call-1", name="switch_agent", arguments='{"target":"debug"}')],
            usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7),
            finish_reason=FinishReason.TOOL_CALLS,
            provider="offline",
            model="offline-1",
        ),
        LLMFailed(
            id="r-3",
            **T,
            invocation_id="inv-1",
            turn_id="turn-1",
            step=0,
            agent=AgentType.ASK,
            error_class="circuit_open",
            retryable=True,
        ),
        AuditRecord(
            id="audit-1",
            **S,
            tenant_id="acme",
            source_service="session-commands",
            fact_type="session.created.v1",
            fact_id="e-1",
            fact_time=AT,
            outcome=AuditOutcome.RECORDED,
            origin_topic="agent-runtime.session-events",
            origin_partition=3,
            origin_offset=42,
            content=RedactedContent(mode=RedactionMode.HASHED, length=2, sha256="0" * 64),
        ),
        DeadLetter(
            id="dl-1",
            **S,
            origin_topic="agent-runtime.commands",
            origin_partition=1,
            origin_offset=7,
            consumer_group="session-commands",
            source_service="session-commands",
            reason=DeadLetterReason.MALFORMED_JSON,
            error_class="DecodeError",
            error_message="bad",
            original_key_b64="czEK",
            original_value_b64="e30=",
            original_headers=[OriginalHeader(name="ce_type", value_b64="eA==")],
        ),
    ]
