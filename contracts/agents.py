"""The five agent types and chat roles shared by sessions, orchestration and LLM calls."""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from contracts.limits import MAX_AGENT_NAME_LENGTH


class AgentType(StrEnum):
    ORCHESTRATOR = "orchestrator"
    CODER = "coder"
    ARCHITECT = "architect"
    DEBUG = "debug"
    ASK = "ask"


AgentName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_AGENT_NAME_LENGTH),
    Field(
        description=(
            "An agent's name: " + ", ".join(AgentType) + ". Any other name decodes and is "
            "refused by the session with CommandRejected(invalid_agent)."
        ),
        examples=list(AgentType),
    ),
]
"""An agent named by an upstream system: a name the runtime may not know, answered with a
refusal the publisher can read on session-events rather than a dead letter."""


def agent_named(name: str) -> AgentType | None:
    """The agent of that name, or None when there is none."""
    try:
        return AgentType(name)
    except ValueError:
        return None


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"
