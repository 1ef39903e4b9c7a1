"""The `switch_agent` tool: its definition as offered to the model, and reading a call of it.

The parameters schema is the one every service agrees on (see SERVICES.md): the offline LLM
provider reads the `target` enum to know where it may hand off, so the enum lists exactly the
agents the calling agent may hand off to, in catalogue order.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.agents import AgentType
from contracts.limits import MAX_REASON_LENGTH
from contracts.llm import ToolDefinition
from services.agent_orchestration.catalogue import SWITCH_AGENT_TOOL, AgentCatalogue
from services.runtime.json_text import json_problem, parse_json
from services.runtime.unicode_text import encodable


def switch_agent_tool(catalogue: AgentCatalogue, targets: Sequence[AgentType]) -> ToolDefinition:
    # The target descriptions let a real model choose; they are bounded by the catalogue's
    # description limit, so four of them fit the 1,000-character tool description.
    lines = [
        "Hand this turn to another agent, who then answers the user instead of you.",
        "Use it only when that agent fits the request better than you. Targets:",
        *(f"- {target.value}: {catalogue.profile(target).description}" for target in targets),
    ]
    return ToolDefinition(
        name=SWITCH_AGENT_TOOL,
        description="\n".join(lines)[:MAX_REASON_LENGTH],
        parameters={
            "type": "object",
            "properties": {
                "target": {"type": "string", "enum": [target.value for target in targets]},
                "reason": {"type": "string"},
            },
            "required": ["target", "reason"],
        },
    )


@dataclass(frozen=True, slots=True)
class Handoff:
    target: AgentType
    reason: str


@dataclass(frozen=True, slots=True)
class MalformedArguments:
    problem: str


@dataclass(frozen=True, slots=True)
class DisallowedTarget:
    target: str


HandoffReading = Handoff | MalformedArguments | DisallowedTarget


def read_switch_agent_call(arguments: str, allowed: Sequence[AgentType]) -> HandoffReading:
    """Interpret the JSON arguments of a `switch_agent` call made by an agent.

    Lenient where it costs nothing (a missing reason, extra keys), strict where acting on a
    guess would be wrong (no target, a target the agent may not reach).
    """
    try:
        parsed = parse_json(arguments) if arguments.strip() else None
    except ValueError as exc:  # not JSON (json_text.parse_json)
        return MalformedArguments(f"arguments are not valid JSON ({json_problem(exc)})")
    if not isinstance(parsed, dict):
        return MalformedArguments("arguments must be a JSON object")
    target = parsed.get("target")
    if not isinstance(target, str) or not target.strip():
        return MalformedArguments("'target' is missing or not a string")
    reason = parsed.get("reason", "")
    if not isinstance(reason, str):
        return MalformedArguments("'reason' is not a string")
    try:
        agent = AgentType(target.strip().lower())
    except ValueError:
        return DisallowedTarget(target[:64])
    if agent not in allowed:
        return DisallowedTarget(agent.value)
    # The arguments are JSON text, but a decoded string may hold a lone surrogate ("\\ud800"),
    # which no SwitchAgentForTurn can carry.
    return Handoff(target=agent, reason=encodable(reason.strip()[:MAX_REASON_LENGTH]))
