"""LLMRequested builders shared by the llm-invocation tests."""

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.llm import ChatMessage, LLMRequested, ToolDefinition


def switch_agent_tool(*targets: AgentType) -> ToolDefinition:
    return ToolDefinition(
        name="switch_agent",
        description="Hand this turn to another agent.",
        parameters={
            "type": "object",
            "properties": {
                "target": {"type": "string", "enum": [t.value for t in targets]},
                "reason": {"type": "string"},
            },
            "required": ["target", "reason"],
        },
    )


def llm_request(
    text: str = "What is a monad?",
    *,
    agent: AgentType = AgentType.ASK,
    targets: tuple[AgentType, ...] = (),
    session_id: str = "session-1",
    turn_id: str = "turn-1",
    step: int = 0,
    model: str | None = None,
    max_tokens: int | None = None,
) -> LLMRequested:
    invocation_id = derive_id("invocation", turn_id, step)
    return LLMRequested(
        id=derive_id("event", "request", invocation_id),
        session_id=session_id,
        tenant_id="tenant-1",
        invocation_id=invocation_id,
        turn_id=turn_id,
        step=step,
        agent=agent,
        messages=[
            ChatMessage(role=MessageRole.SYSTEM, content=f"You are the {agent.value} agent."),
            ChatMessage(role=MessageRole.USER, content=text),
        ],
        tools=[switch_agent_tool(*targets)] if targets else [],
        model=model,
        max_tokens=max_tokens,
    )
