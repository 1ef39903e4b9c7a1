"""Building the LLM request for one step of a turn. Pure: same inputs, same request.

Order of the prompt: the agent's system prompt, the session's system prompt, the history window
(`history_window.py`), the turn's tool rounds so far (each an assistant message with its
`tool_calls`, named after the agent that asked, and one `tool` message per call, OpenAI's
chat-completions shape; a hand-off keeps them for the new agent), and the tools the
agent is offered (`switch_agent` with the enum of the agents it may hand off to, unless the turn
has used up its hops or the session its switches; its catalogue tools, unless the turn has used
up its tool calls).
"""

import re
from dataclasses import dataclass
from datetime import datetime

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.limits import DEFAULT_TOOL_CALLS_PER_TURN, MAX_AGENT_SWITCHES
from contracts.llm import ChatMessage, LLMRequested, ToolCall, ToolDefinition
from contracts.session_events import ContextMessage, ConversationContext
from contracts.tools import ToolRound
from services.agent_orchestration.catalogue import SWITCH_AGENT_TOOL, AgentCatalogue
from services.agent_orchestration.handoff_tool import switch_agent_tool
from services.agent_orchestration.history_window import HistoryBudget, select_history

NO_HANDOFF_INSTRUCTION = (
    "This turn cannot be handed to another agent any more: answer the user yourself."
)
NO_TOOLS_INSTRUCTION = (
    "This turn has used all its tool calls: answer the user with what you have found."
)

_NAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class PromptLimits:
    history: HistoryBudget
    max_hops_per_turn: int
    session_switch_cap: int = MAX_AGENT_SWITCHES
    """session-commands refuses the 11th switch of a session (and fails the turn), so an agent
    is not offered a handoff the session would refuse."""
    max_tool_calls_per_turn: int = DEFAULT_TOOL_CALLS_PER_TURN
    """Catalogue tools are withheld once the turn made this many calls; session-commands
    answers calls beyond it with an error result (RequestToolCalls.max_tool_calls)."""


@dataclass(frozen=True, slots=True)
class TurnStep:
    """One step of a turn as a session fact announces it (TurnStarted or AgentSwitched)."""

    tenant_id: str
    session_id: str
    turn_id: str
    step: int
    agent: AgentType
    context: ConversationContext
    rounds: tuple[ToolRound, ...] = ()
    """The turn's answered tool rounds (ToolRoundCompleted), oldest first."""

    def tool_calls_made(self) -> int:
        return sum(len(round_.calls) for round_ in self.rounds)


def invocation_id_for(turn_id: str, step: int) -> str:
    return derive_id("invocation", turn_id, step)


def build_llm_request(
    turn: TurnStep, catalogue: AgentCatalogue, limits: PromptLimits, now: datetime
) -> LLMRequested:
    profile = catalogue.profile(turn.agent)
    handoffs_closed = (
        turn.step >= limits.max_hops_per_turn
        or turn.context.switch_count >= limits.session_switch_cap
    )
    tools_closed = turn.tool_calls_made() >= limits.max_tool_calls_per_turn
    agent_prompt = profile.system_prompt
    if handoffs_closed and profile.handoffs:
        agent_prompt = f"{agent_prompt}\n\n{NO_HANDOFF_INSTRUCTION}"
    if tools_closed and catalogue.granted_tools(turn.agent):
        agent_prompt = f"{agent_prompt}\n\n{NO_TOOLS_INSTRUCTION}"
    messages = [ChatMessage(role=MessageRole.SYSTEM, content=agent_prompt)]
    if turn.context.system_prompt.strip():
        messages.append(ChatMessage(role=MessageRole.SYSTEM, content=turn.context.system_prompt))
    messages.extend(
        _chat_message(message) for message in select_history(turn.context.messages, limits.history)
    )
    for round_ in turn.rounds:
        messages.extend(_round_messages(round_, round_.agent or turn.agent))
    invocation_id = invocation_id_for(turn.turn_id, turn.step)
    return LLMRequested(
        # One request per invocation: the invocation id doubles as the message id, so
        # consumers that dedupe by message id and by invocation id agree.
        id=invocation_id,
        session_id=turn.session_id,
        occurred_at=now,
        tenant_id=turn.tenant_id,
        invocation_id=invocation_id,
        turn_id=turn.turn_id,
        step=turn.step,
        agent=turn.agent,
        messages=messages,
        tools=tools_for(
            turn.agent, catalogue, handoffs_closed=handoffs_closed, tools_closed=tools_closed
        ),
        model=profile.model,
        temperature=profile.temperature,
        max_tokens=profile.max_tokens,
    )


def tools_for(
    agent: AgentType,
    catalogue: AgentCatalogue,
    *,
    handoffs_closed: bool,
    tools_closed: bool = False,
) -> list[ToolDefinition]:
    profile = catalogue.profile(agent)
    tools: list[ToolDefinition] = []
    for name in profile.tools:
        # Withholding the tool on the last hop stops ping-pong at the source; the policy
        # still refuses a switch there in case a model calls a tool it was not offered.
        if name == SWITCH_AGENT_TOOL and not handoffs_closed:
            tools.append(switch_agent_tool(catalogue, profile.handoffs))
        spec = catalogue.tools.get(name)
        if spec is not None and not tools_closed:
            tools.append(
                ToolDefinition(name=name, description=spec.description, parameters=spec.parameters)
            )
    return tools


def _round_messages(round_: ToolRound, agent: AgentType) -> list[ChatMessage]:
    calls = [
        ToolCall(id=call.tool_call_id, name=call.tool, arguments=call.arguments)
        for call in round_.calls
    ]
    messages = [
        ChatMessage(
            role=MessageRole.ASSISTANT,
            content=round_.assistant_content,
            name=agent.value,
            tool_calls=calls,
        )
    ]
    messages.extend(
        ChatMessage(role=MessageRole.TOOL, content=call.content, tool_call_id=call.tool_call_id)
        for call in round_.calls
    )
    return messages


def _chat_message(message: ContextMessage) -> ChatMessage:
    return ChatMessage(role=message.role, content=message.content, name=_speaker(message))


def _speaker(message: ContextMessage) -> str | None:
    """OpenAI accepts `name` only as [A-Za-z0-9_-]{1,64}; author names may hold anything."""
    if message.role is MessageRole.ASSISTANT and message.agent is not None:
        return message.agent.value
    if message.role is MessageRole.USER and message.author_name:
        name = _NAME_FORBIDDEN.sub("_", message.author_name).strip("_")[:64]
        return name or None
    return None
