"""The history window: within budget, oldest dropped first, no message cut, current kept."""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.session_events import ContextMessage
from services.agent_orchestration.history_window import HistoryBudget, select_history
from tests.support.agent_orchestration.facts import message

pytestmark = pytest.mark.unit

USER, ASSISTANT = MessageRole.USER, MessageRole.ASSISTANT


def _conversation(count: int, size: int) -> list[ContextMessage]:
    roles = (USER, ASSISTANT)
    return [
        message(seq, roles[(seq - 1) % 2], f"{seq:03d}" + "x" * (size - 3))
        for seq in range(1, count + 1)
    ]


def test_everything_fits_within_a_large_budget() -> None:
    history = _conversation(5, 10)

    assert select_history(history, HistoryBudget(max_chars=1_000, max_messages=50)) == history


def test_oldest_messages_are_dropped_first() -> None:
    history = _conversation(9, 100)  # ends with a user message

    window = select_history(history, HistoryBudget(max_chars=350, max_messages=50))

    assert [m.seq for m in window] == [7, 8, 9]


def test_no_message_is_cut_in_half() -> None:
    history = _conversation(9, 100)

    window = select_history(history, HistoryBudget(max_chars=399, max_messages=50))

    assert [m.content for m in window] == [m.content for m in history[-3:]]
    assert sum(len(m.content) for m in window) <= 399


def test_the_window_stays_contiguous() -> None:
    # A long message in the middle ends the window; older short ones are not squeezed in.
    history = [
        message(1, USER, "short"),
        message(2, ASSISTANT, "L" * 500, agent=AgentType.CODER),
        message(3, USER, "now"),
    ]

    window = select_history(history, HistoryBudget(max_chars=100, max_messages=50))

    assert [m.seq for m in window] == [3]


def test_the_current_user_message_is_kept_even_over_budget() -> None:
    history = [message(1, USER, "old"), message(2, USER, "q" * 5_000)]

    window = select_history(history, HistoryBudget(max_chars=10, max_messages=1))

    assert window == [history[1]]


def test_the_current_exchange_is_kept_whole() -> None:
    # Anything after the latest user message belongs to the current exchange.
    history = [
        message(1, USER, "a" * 50),
        message(2, USER, "b" * 50),
        message(3, ASSISTANT, "c" * 50, agent=AgentType.ORCHESTRATOR),
    ]

    window = select_history(history, HistoryBudget(max_chars=60, max_messages=50))

    assert [m.seq for m in window] == [2, 3]


def test_the_message_count_is_bounded() -> None:
    history = _conversation(9, 1)

    window = select_history(history, HistoryBudget(max_chars=10_000, max_messages=4))

    # 6..9 would fit the count, but 6 answers 5, which does not: the window starts at a question.
    assert [m.seq for m in window] == [7, 8, 9]


def test_an_answer_whose_question_did_not_fit_is_left_out() -> None:
    history = [
        message(1, USER, "q" * 100),
        message(2, ASSISTANT, "short answer"),
        message(3, USER, "next question"),
        message(4, ASSISTANT, "next answer"),
        message(5, USER, "now"),
    ]

    window = select_history(history, HistoryBudget(max_chars=60, max_messages=50))

    assert [m.seq for m in window] == [3, 4, 5]


def test_the_given_conversation_order_is_kept() -> None:
    # session-commands puts an answer right after its question even when a message sent
    # meanwhile has a lower seq; re-sorting by seq would separate them again.
    history = [
        message(1, USER, "first question"),
        message(3, ASSISTANT, "first answer", agent=AgentType.ASK),
        message(2, USER, "second question"),
    ]

    window = select_history(history, HistoryBudget(10_000, 50))

    assert [m.seq for m in window] == [1, 3, 2]


def test_an_empty_history_gives_an_empty_window() -> None:
    assert select_history([], HistoryBudget(max_chars=10, max_messages=10)) == []
