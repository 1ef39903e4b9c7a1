"""The five agent types and chat roles shared by sessions, orchestration and LLM calls."""

from enum import StrEnum


class AgentType(StrEnum):
    ORCHESTRATOR = "orchestrator"
    CODER = "coder"
    ARCHITECT = "architect"
    DEBUG = "debug"
    ASK = "ask"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"
