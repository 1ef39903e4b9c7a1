"""session-commands' own metrics (the runtime's consumer metrics come on top)."""

from collections.abc import Iterable

from prometheus_client import Counter

from contracts.session_events import SessionEvent, TurnCancelled

TURNS_CANCELLED = Counter(
    "turns_cancelled_total",
    "Turns cancelled, by reason: cancelled (CancelTurn), interrupted, replaced (mid-turn policy).",
    ["reason"],
)


def count_published(events: Iterable[SessionEvent]) -> None:
    """Counted once per decision, when its events were first published."""
    for event in events:
        if isinstance(event, TurnCancelled):
            TURNS_CANCELLED.labels(event.reason.value).inc()
