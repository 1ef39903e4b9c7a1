"""Submitting messages, completing and failing turns, the mid-turn queue."""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.limits import MAX_CONTENT_LENGTH
from contracts.session_events import (
    AssistantMessageAppended,
    CommandRejected,
    RejectionReason,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    UserMessageAccepted,
)
from services.session_commands.domain.policy import DeciderPolicy, MidTurnPolicy
from tests.support.session_commands.scenario import (
    SESSION,
    Session,
    complete,
    create,
    fail,
    submit,
    types,
)

pytestmark = pytest.mark.unit


def test_submit_when_idle_accepts_and_starts_a_turn() -> None:
    session = Session().given(create(system_prompt="sys", initial_agent=AgentType.ASK))
    command = submit("hi", author_name="ann")

    decision = session.when(command)

    accepted, started = decision.events
    assert isinstance(accepted, UserMessageAccepted)
    assert (accepted.seq, accepted.queued, accepted.author_name) == (1, False, "ann")
    assert isinstance(started, TurnStarted)
    assert started.id == derive_id("event", command.id, 1)
    assert started.turn_id == derive_id("turn", SESSION, command.message_id)
    assert (started.step, started.agent, started.user_message_id) == (
        0,
        AgentType.ASK,
        command.message_id,
    )
    assert started.context.system_prompt == "sys"
    assert started.context.switch_count == 0
    assert [(m.seq, m.role, m.content) for m in started.context.messages] == [
        (1, MessageRole.USER, "hi")
    ]
    assert session.current.turn is not None
    assert session.current.turn.turn_id == started.turn_id


def test_complete_appends_the_answer_and_frees_the_session() -> None:
    session = Session().given(create(), submit("q"))
    turn = session.current.turn
    assert turn is not None

    decision = session.when(complete(session.current, "a", agent=AgentType.ORCHESTRATOR))

    appended, completed = decision.events
    assert isinstance(appended, AssistantMessageAppended)
    assert appended.message_id == derive_id("assistant-message", turn.turn_id)
    assert (appended.seq, appended.agent, appended.content) == (2, AgentType.ORCHESTRATOR, "a")
    assert isinstance(completed, TurnCompleted)
    assert (completed.turn_id, completed.steps) == (turn.turn_id, 1)
    assert session.current.is_idle
    assert session.current.counters.turns_completed == 1


def test_fail_ends_the_turn_and_frees_the_session() -> None:
    session = Session().given(create(), submit())

    decision = session.when(fail(session.current, reason="provider down"))

    (failed,) = decision.events
    assert isinstance(failed, TurnFailed)
    assert (failed.error_class, failed.reason) == ("LLMError", "provider down")
    assert session.current.is_idle
    assert types(session.when(submit())) == ["UserMessageAccepted", "TurnStarted"]


def test_mid_turn_message_is_queued_and_runs_after_the_turn_completes() -> None:
    session = Session().given(create(), submit("first"))
    second = submit("second")

    queued = session.when(second)

    (accepted,) = queued.events
    assert isinstance(accepted, UserMessageAccepted)
    assert (accepted.seq, accepted.queued) == (2, True)

    decision = session.when(complete(session.current, "answer to first"))

    assert types(decision) == ["AssistantMessageAppended", "TurnCompleted", "TurnStarted"]
    appended, _, started = decision.events
    assert isinstance(appended, AssistantMessageAppended)
    assert appended.seq == 3  # history keeps arrival order
    assert isinstance(started, TurnStarted)
    assert started.user_message_id == second.message_id
    # The window puts the answer after its question and ends with the message being answered.
    assert [m.content for m in started.context.messages] == [
        "first",
        "answer to first",
        "second",
    ]
    assert session.current.queue == ()


def test_queued_messages_run_in_arrival_order_after_a_failure_too() -> None:
    session = Session().given(create(), submit("1"))
    second, third = submit("2"), submit("3")
    session.given(second, third)

    after_fail = session.when(fail(session.current))
    after_complete = session.when(complete(session.current))

    assert isinstance(after_fail.events[-1], TurnStarted)
    assert after_fail.events[-1].user_message_id == second.message_id
    assert isinstance(after_complete.events[-1], TurnStarted)
    assert after_complete.events[-1].user_message_id == third.message_id
    assert [m.content for m in after_complete.events[-1].context.messages] == [
        "1",
        "2",
        "answer",
        "3",
    ]


def test_a_still_queued_message_is_left_out_of_the_window() -> None:
    session = Session().given(create(), submit("1"), submit("2"), submit("3"))

    decision = session.when(complete(session.current, "a1"))

    started = decision.events[-1]
    assert isinstance(started, TurnStarted)
    assert [m.content for m in started.context.messages] == ["1", "a1", "2"]


def test_the_queue_is_bounded() -> None:
    session = Session(policy=DeciderPolicy(max_queued_messages=2))
    session.given(create(), submit(), submit(), submit())

    session.when(submit())

    (event,) = session.decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.QUEUE_FULL
    assert len(session.current.queue) == 2


def test_reject_policy_refuses_a_message_during_a_turn() -> None:
    session = Session(policy=DeciderPolicy(mid_turn=MidTurnPolicy.REJECT))
    session.given(create(), submit())

    decision = session.when(submit())

    (event,) = decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.TURN_IN_FLIGHT
    assert decision.remember
    assert session.current.counters.user_messages == 1


def test_a_reused_message_id_is_refused() -> None:
    session = Session().given(create())
    first = submit("x")
    session.given(first)
    session.when(complete(session.current))

    session.when(submit("y", message_id=first.message_id))

    (event,) = session.decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.DUPLICATE_ID


def test_a_stale_step_is_ignored() -> None:
    session = Session().given(create(), submit())
    stale = complete(session.current, step=5)

    decision = session.when(stale)

    assert decision.ignored
    assert session.current.turn is not None


def test_the_window_respects_the_count_budget() -> None:
    session = Session(policy=DeciderPolicy(context_max_messages=3)).given(create())
    for i in range(4):
        session.when(submit(f"q{i}"))
        session.when(complete(session.current, f"a{i}"))

    decision = session.when(submit("last"))

    started = decision.events[-1]
    assert isinstance(started, TurnStarted)
    assert [m.content for m in started.context.messages] == ["q3", "a3", "last"]


def test_the_window_respects_the_char_budget_but_keeps_the_message_answered() -> None:
    big = "x" * MAX_CONTENT_LENGTH
    session = Session(policy=DeciderPolicy(context_max_chars=MAX_CONTENT_LENGTH + 6))
    session.given(create(), submit("short"))
    session.when(complete(session.current, "tiny"))

    decision = session.when(submit(big))

    started = decision.events[-1]
    assert isinstance(started, TurnStarted)
    # "short" does not fit; its answer "tiny" would, but not without its question.
    assert [m.content for m in started.context.messages] == [big]


def test_the_window_starts_with_a_question_when_the_count_cuts_an_exchange() -> None:
    session = Session(policy=DeciderPolicy(context_max_messages=4))
    session.given(create())
    for i in range(3):
        session.given(submit(f"q{i}"))
        session.given(complete(session.current, f"a{i}"))

    started = session.when(submit("now")).events[-1]

    assert isinstance(started, TurnStarted)
    # The count allows 3 earlier messages, a1 q2 a2; a1 answers q1, which is cut: a1 goes too.
    assert [m.content for m in started.context.messages] == ["q2", "a2", "now"]


def test_the_tail_in_the_state_stays_bounded() -> None:
    policy = DeciderPolicy(context_max_messages=5, max_queued_messages=2)
    session = Session(policy=policy).given(create())
    for i in range(50):
        session.when(submit(f"q{i}"))
        session.when(complete(session.current, f"a{i}"))

    assert len(session.current.recent) == 7
    assert session.current.recent[-1].content == "a49"
    assert session.current.counters.messages == 100
