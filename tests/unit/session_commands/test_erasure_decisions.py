"""EraseSession: given a session, when it is erased, then its content is gone for good."""

from collections.abc import Callable

import pytest

from contracts.agents import AgentType
from contracts.session_events import CommandRejected, RejectionReason, SessionErased, TurnFailed
from services.session_commands.domain.decider import SessionCommand
from services.session_commands.domain.state import SessionStatus
from tests.support.session_commands.scenario import (
    Session,
    close,
    complete,
    create,
    erase,
    expire,
    reopen,
    replay,
    submit,
    switch,
    types,
    update,
)

pytestmark = pytest.mark.unit


def _with_content() -> Session:
    return Session().given(
        create(title="Divorce papers", description="private", system_prompt="you are my lawyer"),
        submit("my name is Ada"),
    )


def _rejection(session: Session) -> RejectionReason:
    (event,) = session.decision.events
    assert isinstance(event, CommandRejected)
    return event.reason


def test_erasing_an_active_session_fails_its_turn_and_erases_every_content() -> None:
    session = _with_content()
    assert session.current.turn is not None

    decision = session.when(erase(requested_by="api-key:k1", reason="user request"))

    assert types(decision) == ["TurnFailed", "SessionErased"]
    failed, erased = decision.events
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "session_erased"
    assert isinstance(erased, SessionErased)
    assert erased.requested_by == "api-key:k1"
    state = session.current
    assert state.status is SessionStatus.ERASED
    assert (state.title, state.description, state.system_prompt, state.metadata) == ("", "", "", {})
    assert (state.turn, state.queue, state.recent, state.failed_turn) == (None, (), (), None)
    assert state.counters.messages == 1  # the skeleton: seqs stay
    assert decision.remember
    assert replay(session.history) == state


def test_erasing_a_closed_or_expired_session_is_accepted() -> None:
    closed = _with_content().given(close())
    assert types(closed.when(erase())) == ["SessionErased"]
    assert closed.current.status is SessionStatus.ERASED

    expired = _with_content()
    expired.given(complete(expired.current, "an answer"))
    expired.given(expire(expired.current))
    assert expired.current.status is SessionStatus.EXPIRED
    assert types(expired.when(erase())) == ["SessionErased"]
    assert expired.current.recent == ()


def test_erasing_twice_changes_nothing_the_second_time() -> None:
    session = _with_content().given(erase())
    erased = session.current

    decision = session.when(erase())

    assert decision.events == ()
    assert decision.state == erased
    assert decision.remember  # answered like an applied command: the erasure holds


def test_another_tenant_cannot_erase_and_learns_nothing() -> None:
    session = _with_content()
    before = session.current

    decision = session.when(erase(tenant_id="tenant-b"))

    assert _rejection(session) is RejectionReason.UNKNOWN_SESSION
    assert decision.state == before
    assert not decision.remember


@pytest.mark.parametrize(
    "later",
    [
        lambda: submit("my name is Ada, again"),
        lambda: update(title="back"),
        lambda: switch(AgentType.CODER),
        lambda: reopen(),
        lambda: close(),
    ],
    ids=["submit", "update", "switch", "reopen", "close"],
)
def test_every_command_after_erasure_is_refused_for_good(
    later: Callable[[], SessionCommand],
) -> None:
    session = _with_content().given(erase())
    erased = session.current

    decision = session.when(later())

    assert _rejection(session) is RejectionReason.SESSION_ERASED
    assert decision.state == erased
    assert not decision.remember  # final: nothing ever brings the session back


def test_a_replay_of_the_earlier_commands_brings_no_content_back() -> None:
    commands: list[SessionCommand] = [create(title="T", system_prompt="p"), submit("secret 1")]
    session = Session().given(*commands)
    session.given(complete(session.current, "answer 1"), erase())
    erased = session.current

    for command in commands:
        session.when(command)
        assert session.current == erased
    assert types(session.decision) == ["CommandRejected"]


def test_a_late_step_of_the_failed_turn_is_ignored_after_erasure() -> None:
    session = _with_content()
    running = session.current
    session.given(erase())

    decision = session.when(complete(running, "a late answer"))

    assert decision.events == ()
    assert session.current.recent == ()
