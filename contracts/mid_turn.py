"""What a user message that arrives during a running turn does: the session's mid-turn policy.

Its own module because both the commands (set it) and the session events (record it) name it.
"""

from enum import StrEnum


class MidTurnPolicy(StrEnum):
    QUEUE = "queue"
    """Keep the message and run it as the next turn ("enqueue")."""
    REJECT = "reject"
    """Refuse it with `turn_in_flight`."""
    INTERRUPT = "interrupt"
    """Cancel the running turn, then run the message with the partial answer in its context."""
    REPLACE = "replace"
    """Cancel the running turn and leave its partial answer out of the next prompt (it stays in
    the history)."""


class CancellationReason(StrEnum):
    """Why a turn was cancelled (`TurnCancelled.reason`, the `turns_cancelled_total` label)."""

    CANCELLED = "cancelled"
    """A CancelTurn command (a user's stop button)."""
    INTERRUPTED = "interrupted"
    """A new message under the `interrupt` policy."""
    REPLACED = "replaced"
    """A new message under the `replace` policy."""
