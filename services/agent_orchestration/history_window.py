"""Choosing which past messages go into the prompt, within a character budget.

Rules, in order of precedence:
1. The turn's current exchange — the latest user message and anything after it — is always
   included, even over budget: without it the model has nothing to answer.
2. Older messages are added newest first while they fit whole; the first one that does not fit
   ends the window. Oldest messages are dropped first, no message is cut in half, and the window
   stays contiguous (skipping a long message to squeeze in older ones would garble the thread).
3. The window starts with a question: an answer whose question did not fit is left out too.
The order is the one session-commands gives (conversation order: each answer right after its
question, the turn's own user message last), so it is kept as it is, not re-sorted by seq.
Characters stand in for tokens (roughly four characters per token for English text); a pure
count keeps this independent of any provider's tokenizer.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from contracts.agents import MessageRole
from contracts.session_events import ContextMessage


@dataclass(frozen=True, slots=True)
class HistoryBudget:
    max_chars: int
    max_messages: int


def select_history(
    messages: Sequence[ContextMessage], budget: HistoryBudget
) -> list[ContextMessage]:
    ordered = list(messages)
    if not ordered:
        return []
    start = _current_exchange_start(ordered)
    window = ordered[start:]
    used = sum(len(message.content) for message in window)
    for message in reversed(ordered[:start]):
        cost = len(message.content)
        if used + cost > budget.max_chars or len(window) >= budget.max_messages:
            break
        window.insert(0, message)
        used += cost
    history = len(window) - (len(ordered) - start)
    while history > 0 and window[0].role is not MessageRole.USER:
        window.pop(0)
        history -= 1
    return window


def _current_exchange_start(ordered: Sequence[ContextMessage]) -> int:
    for index in range(len(ordered) - 1, -1, -1):
        if ordered[index].role is MessageRole.USER:
            return index
    # No user message at all should not happen in a turn; keep at least the newest message.
    return len(ordered) - 1
