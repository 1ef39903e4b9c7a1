"""RetryTurn: a failed turn runs again, once, with the same user message and a new turn id."""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.session_events import CommandRejected, RejectionReason, TurnStarted
from tests.support.session_commands.scenario import (
    SESSION,
    Session,
    close,
    complete,
    create,
    fail,
    reopen,
    retry,
    submit,
    types,
)

pytestmark = pytest.mark.unit


def failed_session(*contents: str) -> tuple[Session, str]:
    """A session whose last turn (answering the last content) failed; returns its turn id."""
    session = Session().given(create(initial_agent=AgentType.ASK))
    for content in contents[:-1]:
        session.given(submit(content))
        session.given(complete(session.current, f"answer to {content}"))
    session.given(submit(contents[-1]))
    turn = session.current.turn
    assert turn is not None
    session.given(fail(session.current, error_class="circuit_open"))
    return session, turn.turn_id


def refusal(session: Session) -> RejectionReason | None:
    (event,) = session.decision.events
    assert isinstance(event, CommandRejected)
    return event.reason


def test_a_failed_turn_runs_again_with_the_same_message_and_a_new_turn_id() -> None:
    session, failed_turn = failed_session("first", "second")
    user_message = session.current.failed_turn
    assert user_message is not None

    (started,) = session.when(retry(failed_turn)).events

    assert isinstance(started, TurnStarted)
    assert started.turn_id not in (failed_turn, derive_id("turn", SESSION, started.user_message_id))
    assert started.user_message_id == user_message.user_message.message_id
    assert (started.step, started.agent) == (0, AgentType.ASK)
    # The same context a first attempt gets: the history so far, the answered message last.
    assert [(m.role, m.content) for m in started.context.messages] == [
        (MessageRole.USER, "first"),
        (MessageRole.ASSISTANT, "answer to first"),
        (MessageRole.USER, "second"),
    ]
    assert session.current.turn is not None
    assert session.current.turn.turn_id == started.turn_id
    assert session.current.failed_turn is None
    # It completes like any turn; the history gets one answer, after its question.
    assert types(session.when(complete(session.current, "retried answer"))) == [
        "AssistantMessageAppended",
        "TurnCompleted",
    ]
    assert session.current.counters.messages == 4


def test_the_same_command_again_changes_nothing_and_another_one_is_refused() -> None:
    session, failed_turn = failed_session("q")
    command = retry(failed_turn)
    first = session.when(command)
    state = session.current

    again = session.when(command)  # what a redelivery decides, had the id not been remembered
    assert refusal(session) is RejectionReason.TURN_IN_FLIGHT
    assert again.state == state

    (started,) = first.events
    assert isinstance(started, TurnStarted)
    session.given(fail(session.current))
    assert session.current.failed_turn is not None
    assert session.current.failed_turn.turn_id == started.turn_id
    session.when(retry(failed_turn))  # the earlier failure: superseded by the retry's own
    assert refusal(session) is RejectionReason.NOT_RETRYABLE


def test_a_failed_retry_can_be_retried_with_yet_another_turn_id() -> None:
    session, failed_turn = failed_session("q")
    (first,) = session.when(retry(failed_turn)).events
    assert isinstance(first, TurnStarted)
    session.given(fail(session.current))

    (second,) = session.when(retry(first.turn_id)).events

    assert isinstance(second, TurnStarted)
    assert len({failed_turn, first.turn_id, second.turn_id}) == 3
    assert second.user_message_id == first.user_message_id


@pytest.mark.parametrize(
    ("situation", "reason"),
    [
        ("unknown turn", RejectionReason.NOT_RETRYABLE),
        ("completed turn", RejectionReason.NOT_RETRYABLE),
        ("a later turn started", RejectionReason.TURN_IN_FLIGHT),
        ("a later turn completed", RejectionReason.NOT_RETRYABLE),
    ],
)
def test_only_the_last_turn_and_only_if_it_failed(situation: str, reason: RejectionReason) -> None:
    session, failed_turn = failed_session("q")
    turn_id = failed_turn
    if situation == "unknown turn":
        turn_id = "no-such-turn"
    elif situation == "completed turn":
        session.given(submit("next"))
        assert session.current.turn is not None
        turn_id = session.current.turn.turn_id
        session.given(complete(session.current))
    elif situation == "a later turn started":
        session.given(submit("next"))
    else:
        session.given(submit("next"))
        session.given(complete(session.current))

    session.when(retry(turn_id))

    assert refusal(session) is reason


def test_a_message_queued_behind_the_failed_turn_runs_instead() -> None:
    session = Session().given(create(), submit("first"))
    failing = session.current.turn
    assert failing is not None
    session.given(submit("queued"))
    session.given(fail(session.current))  # the queued message starts at once
    assert session.current.turn is not None

    session.when(retry(failing.turn_id))

    assert refusal(session) is RejectionReason.TURN_IN_FLIGHT


def test_a_turn_failed_by_closing_can_be_retried_after_reopening() -> None:
    session = Session().given(create(), submit("q"))
    turn = session.current.turn
    assert turn is not None
    session.given(close())
    session.when(retry(turn.turn_id))
    assert refusal(session) is RejectionReason.SESSION_CLOSED

    session.given(reopen())
    assert types(session.when(retry(turn.turn_id))) == ["TurnStarted"]
