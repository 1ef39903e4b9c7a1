"""The turns this process has seen cancelled, so that work for one is never done (or paid for).

The session-events watcher cancels running work (an LLM invocation, a tool call) of a cancelled
turn. Some requests arrive after the TurnCancelled instead: the next step of a turn cancelled
during a hand-off hop, and the redelivery of a request whose process died between the cancel and
the abort (kill -9; the restarted watcher reads recent history for this, session_watch.py). They
are answered `cancelled` without doing the work. Bounded: the newest `capacity` turns.
"""

from collections import OrderedDict


class CancelledTurns:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._turns: OrderedDict[str, str] = OrderedDict()

    def add(self, turn_id: str, reason: str) -> None:
        self._turns[turn_id] = reason
        self._turns.move_to_end(turn_id)
        while len(self._turns) > self._capacity:
            self._turns.popitem(last=False)

    def reason(self, turn_id: str) -> str | None:
        """Why the turn was cancelled, or None if it was not (as far as this process saw)."""
        return self._turns.get(turn_id)
