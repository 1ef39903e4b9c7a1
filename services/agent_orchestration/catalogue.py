"""The agent catalogue: what each of the five agents is, says, may call and may hand off to,
and the tools they call (`tools`, tool_specs.py).

It is data, not code branches: the default ships as `default_catalogue.toml` and operators
replace it with a file of their own (see `catalogue_file.py`). Validation happens once, at
start-up, so a bad catalogue stops the service before it consumes anything.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PositiveInt,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from contracts.agents import AgentType
from contracts.limits import MAX_SYSTEM_PROMPT_LENGTH, MAX_TOOL_CALLS
from contracts.llm import ToolName
from services.agent_orchestration.tool_specs import ToolSpec

SWITCH_AGENT_TOOL = "switch_agent"
"""The only tool orchestration itself executes: hand the running turn to another agent."""

MAX_AGENT_DESCRIPTION_LENGTH = 160
"""Descriptions are listed inside the `switch_agent` tool description (at most 1,000 chars)."""

Description = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_AGENT_DESCRIPTION_LENGTH),
]
SystemPrompt = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SYSTEM_PROMPT_LENGTH)
]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class AgentProfile(BaseModel):
    """One agent. Unknown keys are refused so that a typo (`handoff =`) is not silently lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: Description
    system_prompt: SystemPrompt
    tools: tuple[str, ...] = Field(
        default=(),
        max_length=MAX_TOOL_CALLS,
        description="Tools the agent is offered: switch_agent and names of the catalogue's tools.",
    )
    handoffs: tuple[AgentType, ...] = Field(
        default=(), description="Agents it may hand the turn to with `switch_agent`."
    )
    model: ModelName | None = Field(default=None, description="None: the provider's default.")
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: PositiveInt | None = None


class AgentCatalogue(BaseModel):
    """All five agents, keyed by agent type, and the tools they may be granted, by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: Mapping[AgentType, AgentProfile]
    tools: Mapping[ToolName, ToolSpec] = Field(
        default_factory=dict, description="Tools an agent may call (executed outside)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _complete_and_consistent(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # The rules between fields are checked even when some field is invalid, and every
        # problem is reported, so that an operator fixes a file in one round rather than one
        # error per crash-looping start (docs: "lists every problem, a line each").
        try:
            catalogue = handler(data)
        except ValidationError as exc:
            problems = _cross_field_problems(_raw_grants(data))
            if not problems:
                raise
            raise ValidationError.from_exception_data(
                cls.__name__, _in_file_order([*_reraised(exc), *problems], data)
            ) from None
        problems = _cross_field_problems(catalogue._grants())
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return catalogue

    def _grants(self) -> "_Grants":
        return _Grants(
            agents={
                agent.value: _AgentGrants(
                    tools=profile.tools, handoffs=tuple(target.value for target in profile.handoffs)
                )
                for agent, profile in self.agents.items()
            },
            tool_names=tuple(self.tools),
        )

    def granted_tools(self, agent: AgentType) -> dict[str, ToolSpec]:
        """The catalogue tools the agent may call (switch_agent aside), in its order."""
        return {name: self.tools[name] for name in self.profile(agent).tools if name in self.tools}

    def profile(self, agent: AgentType) -> AgentProfile:
        return self.agents[agent]


@dataclass(frozen=True, slots=True)
class _AgentGrants:
    """What one agent is given, as names; None where the file's value is not a list of names
    (a field error already reported, so the rules that need it are skipped)."""

    tools: tuple[str, ...] | None
    handoffs: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Grants:
    agents: Mapping[str, _AgentGrants] | None
    tool_names: tuple[str, ...] | None
    """None: the file's tools are not a table, so which names are known cannot be said."""


def _names(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _raw_grants(data: object) -> _Grants:
    """The grants of a catalogue that failed field validation, read leniently from its data."""
    if not isinstance(data, Mapping):
        return _Grants(agents=None, tool_names=None)
    tools = data.get("tools", {})
    tool_names = tuple(str(name) for name in tools) if isinstance(tools, Mapping) else None
    agents = data.get("agents")
    if not isinstance(agents, Mapping):
        return _Grants(agents=None, tool_names=tool_names)
    grants = {
        str(name): _AgentGrants(
            tools=_names(profile.get("tools", [])), handoffs=_names(profile.get("handoffs", []))
        )
        if isinstance(profile, Mapping)
        else _AgentGrants(tools=None, handoffs=None)  # present, if invalid: not missing
        for name, profile in agents.items()
    }
    return _Grants(agents=grants, tool_names=tool_names)


def _problem(loc: tuple[str, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("catalogue_rule", "{problem}", {"problem": message}),
        loc=loc,
        input=None,
    )


def _cross_field_problems(grants: _Grants) -> list[InitErrorDetails]:
    """Every rule between fields: all five agents, the reserved name, and per agent its tools
    and handoffs agreeing with each other and with the catalogue's tools."""
    problems: list[InitErrorDetails] = []
    if grants.agents is not None:
        missing = [agent.value for agent in AgentType if agent.value not in grants.agents]
        if missing:
            problems.append(_problem(("agents",), f"missing agent(s) {', '.join(missing)}"))
    if grants.tool_names is not None and SWITCH_AGENT_TOOL in grants.tool_names:
        problems.append(_problem(("tools", SWITCH_AGENT_TOOL), "the name is reserved for handoffs"))
    known = None if grants.tool_names is None else sorted({SWITCH_AGENT_TOOL, *grants.tool_names})
    for name, agent in (grants.agents or {}).items():
        if name not in set(AgentType):
            continue  # an unknown agent is a field error of its own
        problems += _agent_problems(name, agent, known)
    return problems


def _agent_problems(
    name: str, agent: _AgentGrants, known: list[str] | None
) -> list[InitErrorDetails]:
    # Both directions of the tools/handoffs rule are errors: a switch tool with no target is
    # useless, and targets without the tool can never be reached. Either way the operator
    # meant something else.
    problems: list[str] = []
    handoff_problems: list[str] = []
    tools, handoffs = agent.tools, agent.handoffs
    if tools is not None and len(set(tools)) != len(tools):
        problems.append("tools are listed more than once")
    if handoffs is not None and len(set(handoffs)) != len(handoffs):
        problems.append("handoffs are listed more than once")
    if tools is not None and handoffs is not None:
        if handoffs and SWITCH_AGENT_TOOL not in tools:
            problems.append(f"handoffs are given but tools do not include {SWITCH_AGENT_TOOL!r}")
        if SWITCH_AGENT_TOOL in tools and not handoffs:
            problems.append(f"tools include {SWITCH_AGENT_TOOL!r} but no handoffs are given")
    if handoffs is not None and name in handoffs:
        handoff_problems.append("an agent cannot hand off to itself")
    unknown = [] if known is None else sorted(set(tools or ()) - set(known))
    if unknown and known is not None:
        problems.append(f"unknown tool(s) {', '.join(unknown)}; known tools: {', '.join(known)}")
    return [_problem(("agents", name), problem) for problem in problems] + [
        _problem(("agents", name, "handoffs"), problem) for problem in handoff_problems
    ]


def _in_file_order(problems: list[InitErrorDetails], data: object) -> list[InitErrorDetails]:
    """Field errors and broken rules together, in the order of the file: agents (as listed),
    then tools; a stable sort keeps each place's own order."""
    agents = data.get("agents") if isinstance(data, Mapping) else None
    listed = [str(name) for name in agents] if isinstance(agents, Mapping) else []

    def place(problem: InitErrorDetails) -> tuple[int, int]:
        loc = tuple(str(part) for part in problem["loc"])
        section = {"agents": 0, "tools": 1}.get(loc[0] if loc else "", 2)
        agent = listed.index(loc[1]) if section == 0 and len(loc) > 1 and loc[1] in listed else -1
        return section, agent

    return sorted(problems, key=place)


def _reraised(exc: ValidationError) -> list[InitErrorDetails]:
    """The field errors of `exc`, to be raised again together with the rules' problems."""
    details: list[InitErrorDetails] = []
    for error in exc.errors():
        detail = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return details
