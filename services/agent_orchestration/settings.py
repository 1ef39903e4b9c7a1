"""agent-orchestration settings: env prefix `AGENT_RUNTIME_`, like every service."""

from pathlib import Path

from pydantic import Field

from contracts.limits import (
    DEFAULT_TOOL_CALLS_PER_TURN,
    MAX_CONTEXT_MESSAGES,
    MAX_TOOL_CALLS_PER_TURN,
)
from services.agent_orchestration.history_window import HistoryBudget
from services.agent_orchestration.prompt import PromptLimits
from services.runtime.settings import RuntimeSettings, prefixed_name


class OrchestrationSettings(RuntimeSettings):
    orchestration_consumer_group: str = Field(
        default_factory=prefixed_name("agent-orchestration"), min_length=1, max_length=255
    )
    agent_catalogue_path: Path | None = Field(
        None,
        description="An operator's agent catalogue (.toml, .json, .yaml); None = the default.",
    )
    max_hops_per_turn: int = Field(
        5,
        ge=0,
        le=50,
        description="Agent handoffs one turn may make before its agent must answer itself.",
    )
    history_max_chars: int = Field(
        24_000,
        ge=1,
        description="Characters of history in a prompt (about 4 per token); the current "
        "exchange is always included.",
    )
    history_max_messages: int = Field(50, ge=1, le=MAX_CONTEXT_MESSAGES)
    max_tool_calls_per_turn: int = Field(
        DEFAULT_TOOL_CALLS_PER_TURN,
        ge=1,
        le=MAX_TOOL_CALLS_PER_TURN,
        description="Catalogue tool calls one turn may make; then the agent must answer.",
    )

    def prompt_limits(self) -> PromptLimits:
        return PromptLimits(
            history=HistoryBudget(
                max_chars=self.history_max_chars, max_messages=self.history_max_messages
            ),
            max_hops_per_turn=self.max_hops_per_turn,
            max_tool_calls_per_turn=self.max_tool_calls_per_turn,
        )
