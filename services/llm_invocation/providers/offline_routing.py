"""How the offline provider decides between answering and handing off: pure, no I/O.

A request is classified by keywords into the specialist that fits it. The current agent hands
off with `switch_agent` only when the fitting agent is a different one *and* it is among the
targets the tool offers (or, failing that, via the orchestrator); otherwise it answers. The
fitting agent, once reached, classifies the same text to itself and answers, so the offline
provider never ping-pongs.
"""

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contracts.agents import AgentType, MessageRole
from contracts.llm import ChatMessage, ToolDefinition

SWITCH_AGENT_TOOL: Final = "switch_agent"

_KEYWORDS: Final[Mapping[AgentType, tuple[str, ...]]] = {
    AgentType.DEBUG: (
        "bug",
        "bugs",
        "error",
        "errors",
        "exception",
        "exceptions",
        "traceback",
        "stack trace",
        "stacktrace",
        "crash",
        "crashes",
        "crashed",
        "crashing",
        "fail",
        "fails",
        "failing",
        "failed",
        "failure",
        "broken",
        "segfault",
        "doesn't work",
        "does not work",
        "regression",
    ),
    AgentType.CODER: (
        "implement",
        "implementation",
        "write",
        "add",
        "code",
        "function",
        "functions",
        "refactor",
        "refactoring",
        "class",
        "method",
        "script",
        "snippet",
        "unit test",
        # The file tools of the default catalogue belong to the coder (offline_tools.py).
        "read file",
        "read files",
        "list directory",
        "list the directory",
    ),
    AgentType.ARCHITECT: (
        "design",
        "architecture",
        "architect",
        "scalable",
        "scalability",
        "scale",
        "trade-off",
        "trade-offs",
        "tradeoff",
        "tradeoffs",
        "microservice",
        "microservices",
        "system design",
    ),
}

# Ties go to the first: a bug report that also says "function" is still a bug report.
_PRIORITY: Final = (AgentType.DEBUG, AgentType.ARCHITECT, AgentType.CODER)

_PATTERNS: Final = {
    agent: re.compile(r"\b(?:" + "|".join(re.escape(word) for word in words) + r")\b")
    for agent, words in _KEYWORDS.items()
}

_WHY: Final[Mapping[AgentType, str]] = {
    AgentType.DEBUG: "it reports a bug or a failure",
    AgentType.CODER: "it asks for code to be written or changed",
    AgentType.ARCHITECT: "it is a design question",
    AgentType.ASK: "it is a plain question",
}


@dataclass(frozen=True, slots=True)
class Handoff:
    target: AgentType
    reason: str


def classify(text: str) -> AgentType:
    """The specialist that fits a user request: debug, coder, architect, or ask by default."""
    lowered = text.lower()
    scores = {agent: len(set(_PATTERNS[agent].findall(lowered))) for agent in _PRIORITY}
    best = max(_PRIORITY, key=lambda agent: scores[agent])  # max keeps the first on ties
    return best if scores[best] > 0 else AgentType.ASK


def route(current: AgentType, targets: Collection[AgentType], text: str | None) -> Handoff | None:
    """A hand-off when another agent fits the request; None means: answer it.

    The fitting agent directly when the tool offers it; otherwise back to the orchestrator
    when offered, which can reach every specialist. Each hop gets strictly closer to the
    fitting agent (specialist → orchestrator → fit), so there is no cycle.
    """
    if text is None or not text.strip():
        return None
    fit = classify(text)
    if fit == current:
        return None
    if fit in targets:
        return Handoff(target=fit, reason=f"Handing off to the {fit.value} agent: {_WHY[fit]}.")
    if AgentType.ORCHESTRATOR in targets and current is not AgentType.ORCHESTRATOR:
        return Handoff(
            target=AgentType.ORCHESTRATOR,
            reason=f"Back to the orchestrator: {_WHY[fit]}, which is the {fit.value} agent's "
            "job and not one I can hand off to.",
        )
    return None


def handoff_targets(tools: Sequence[ToolDefinition]) -> list[AgentType]:
    """The agents the `switch_agent` tool's `target` enum offers (none when no such tool)."""
    for tool in tools:
        if tool.name != SWITCH_AGENT_TOOL:
            continue
        target: Any = tool.parameters.get("properties", {}).get("target", {})
        enum = target.get("enum", []) if isinstance(target, dict) else []
        return [AgentType(value) for value in enum if value in AgentType._value2member_map_]
    return []


def last_user_text(messages: Sequence[ChatMessage]) -> str | None:
    for message in reversed(messages):
        if message.role is MessageRole.USER:
            return message.content
    return None
