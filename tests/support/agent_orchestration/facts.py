"""Builders of the facts orchestration consumes, with defaults a test overrides as it needs."""

from datetime import UTC, datetime

from contracts.agents import AgentType, MessageRole
from contracts.llm import FinishReason, LLMCompleted, LLMFailed, ToolCall
from contracts.session_events import (
    AgentSwitched,
    ContextMessage,
    ConversationContext,
    SwitchInitiator,
    TurnStarted,
)
from services.agent_orchestration.history_window import HistoryBudget
from services.agent_orchestration.prompt import PromptLimits, invocation_id_for

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SESSION = "session-1"
TENANT = "tenant-a"
TURN = "turn-1"
LIMITS = PromptLimits(HistoryBudget(max_chars=10_000, max_messages=50), max_hops_per_turn=5)


def message(seq: int, role: MessageRole, content: str, **fields: object) -> ContextMessage:
    return ContextMessage.model_validate({"seq": seq, "role": role, "content": content, **fields})


def context(
    *messages: ContextMessage, system_prompt: str = "", switch_count: int = 0
) -> ConversationContext:
    if not messages:
        messages = (message(1, MessageRole.USER, "Implement a binary search in Python."),)
    return ConversationContext(
        system_prompt=system_prompt, messages=list(messages), switch_count=switch_count
    )


def turn_started(
    agent: AgentType = AgentType.ORCHESTRATOR,
    ctx: ConversationContext | None = None,
    step: int = 0,
) -> TurnStarted:
    return TurnStarted(
        id="event-turn-started",
        session_id=SESSION,
        tenant_id=TENANT,
        turn_id=TURN,
        step=step,
        agent=agent,
        user_message_id="user-message-1",
        context=ctx or context(),
    )


def agent_switched(
    to_agent: AgentType = AgentType.CODER,
    *,
    initiated_by: SwitchInitiator = SwitchInitiator.ORCHESTRATION,
    step: int | None = 1,
    with_turn: bool = True,
    from_agent: AgentType = AgentType.ORCHESTRATOR,
) -> AgentSwitched:
    return AgentSwitched(
        id="event-agent-switched",
        session_id=SESSION,
        tenant_id=TENANT,
        from_agent=from_agent,
        to_agent=to_agent,
        reason="fits better",
        switch_count=1,
        initiated_by=initiated_by,
        turn_id=TURN if with_turn else None,
        step=step if with_turn else None,
        context=context() if with_turn else None,
    )


def switch_call(arguments: str, name: str = "switch_agent") -> ToolCall:
    return ToolCall(id="call-1", name=name, arguments=arguments)


def completed(
    *,
    agent: AgentType = AgentType.ORCHESTRATOR,
    step: int = 0,
    content: str = "",
    tool_calls: list[ToolCall] | None = None,
    finish_reason: FinishReason = FinishReason.STOP,
) -> LLMCompleted:
    invocation_id = invocation_id_for(TURN, step)
    return LLMCompleted(
        id=f"result-{invocation_id}",
        session_id=SESSION,
        tenant_id=TENANT,
        invocation_id=invocation_id,
        turn_id=TURN,
        step=step,
        agent=agent,
        content=content,
        tool_calls=tool_calls or [],
        finish_reason=finish_reason,
        provider="offline",
        model="offline-1",
    )


def failed(error_class: str = "circuit_open", step: int = 0) -> LLMFailed:
    invocation_id = invocation_id_for(TURN, step)
    return LLMFailed(
        id=f"result-{invocation_id}",
        session_id=SESSION,
        tenant_id=TENANT,
        invocation_id=invocation_id,
        turn_id=TURN,
        step=step,
        agent=AgentType.CODER,
        error_class=error_class,
        message="the provider's circuit is open",
        retryable=False,
    )
