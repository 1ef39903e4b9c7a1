"""The agent catalogue: what each of the five agents is, says, may call and may hand off to,
and the tools they call (`tools`, tool_specs.py).

It is data, not code branches: the default ships as `default_catalogue.toml` and operators
replace it with a file of their own (see `catalogue_file.py`). Validation happens once, at
start-up, so a bad catalogue stops the service before it consumes anything.
"""

from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, StringConstraints, model_validator

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

    @model_validator(mode="after")
    def _tools_and_handoffs_agree(self) -> Self:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError("tools are listed more than once")
        if len(set(self.handoffs)) != len(self.handoffs):
            raise ValueError("handoffs are listed more than once")
        # Both directions are errors: a switch tool with no target is useless, and targets
        # without the tool can never be reached. Either way the operator meant something else.
        if self.handoffs and SWITCH_AGENT_TOOL not in self.tools:
            raise ValueError(f"handoffs are given but tools do not include {SWITCH_AGENT_TOOL!r}")
        if SWITCH_AGENT_TOOL in self.tools and not self.handoffs:
            raise ValueError(f"tools include {SWITCH_AGENT_TOOL!r} but no handoffs are given")
        return self


class AgentCatalogue(BaseModel):
    """All five agents, keyed by agent type, and the tools they may be granted, by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agents: Mapping[AgentType, AgentProfile]
    tools: Mapping[ToolName, ToolSpec] = Field(
        default_factory=dict, description="Tools an agent may call (executed outside)."
    )

    @model_validator(mode="after")
    def _complete_and_consistent(self) -> Self:
        # Model-level errors carry no location of their own, so the message names the field.
        missing = [agent.value for agent in AgentType if agent not in self.agents]
        if missing:
            raise ValueError(f"agents: missing agent(s) {', '.join(missing)}")
        if SWITCH_AGENT_TOOL in self.tools:
            raise ValueError(f"tools.{SWITCH_AGENT_TOOL}: the name is reserved for handoffs")
        known = sorted({SWITCH_AGENT_TOOL, *self.tools})
        for agent, profile in self.agents.items():
            if agent in profile.handoffs:
                raise ValueError(
                    f"agents.{agent.value}.handoffs: an agent cannot hand off to itself"
                )
            unknown = sorted(set(profile.tools) - set(known))
            if unknown:
                raise ValueError(
                    f"agents.{agent.value}: unknown tool(s) {', '.join(unknown)}; "
                    f"known tools: {', '.join(known)}"
                )
        return self

    def granted_tools(self, agent: AgentType) -> dict[str, ToolSpec]:
        """The catalogue tools the agent may call (switch_agent aside), in its order."""
        return {name: self.tools[name] for name in self.profile(agent).tools if name in self.tools}

    def profile(self, agent: AgentType) -> AgentProfile:
        return self.agents[agent]
