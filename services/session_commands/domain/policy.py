"""The knobs of the decider: every bound the session state and the context window obey."""

from dataclasses import dataclass
from typing import Final

from contracts.limits import MAX_AGENT_SWITCHES, MAX_CONTENT_LENGTH, MAX_CONTEXT_MESSAGES
from contracts.mid_turn import MidTurnPolicy

__all__ = ["MAX_AGENT_SWITCHES", "MidTurnPolicy"]


@dataclass(frozen=True, slots=True)
class DeciderPolicy:
    mid_turn: MidTurnPolicy = MidTurnPolicy.QUEUE
    """The default of sessions that chose none (`SessionState.mid_turn_policy`)."""
    max_queued_messages: int = 10
    context_max_messages: int = 20
    """Messages in a context window; also the length of the tail kept in the session."""
    context_max_chars: int = 48_000
    """Characters of content in a context window and in the tail. The message a turn answers
    is always included, so one maximal message (MAX_CONTENT_LENGTH) always fits."""
    message_id_window: int = 1_000
    """User message ids remembered for `duplicate_id` refusals."""
    tool_call_id_window: int = 300
    """Settled tool call outcomes remembered per session (`SessionState.settled_tool_calls`)."""
    tool_call_timeout_s: float = 300.0
    """How long a round of tool calls may wait for its results (and approvals) before the turn
    fails with `tool_deadline_exceeded`."""

    def __post_init__(self) -> None:
        if not 1 <= self.context_max_messages <= MAX_CONTEXT_MESSAGES:
            raise ValueError(f"context_max_messages must be 1..{MAX_CONTEXT_MESSAGES}")
        if self.context_max_chars < MAX_CONTENT_LENGTH:
            raise ValueError(f"context_max_chars must be at least {MAX_CONTENT_LENGTH}")
        if self.tool_call_timeout_s <= 0:
            raise ValueError("tool_call_timeout_s must be positive")
        if self.max_queued_messages < 0 or self.message_id_window < 1:
            raise ValueError("max_queued_messages >= 0 and message_id_window >= 1 required")


DEFAULT_POLICY: Final = DeciderPolicy()
