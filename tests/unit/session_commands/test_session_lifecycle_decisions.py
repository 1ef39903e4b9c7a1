"""Create, update, close, reopen, expire, tenants and unknown sessions."""

from collections.abc import Callable
from datetime import timedelta

import pytest

from contracts.agents import AgentType
from contracts.base import derive_id
from contracts.session_events import (
    CommandRejected,
    RejectionReason,
    SessionCreated,
    SessionExpired,
    TurnFailed,
)
from services.session_commands.domain.decider import SessionCommand, decide
from services.session_commands.domain.state import SessionStatus
from tests.support.session_commands.scenario import (
    T0,
    TENANT,
    Session,
    close,
    complete,
    create,
    expire,
    fail,
    reopen,
    replay,
    submit,
    switch,
    types,
    update,
)

pytestmark = pytest.mark.unit


def rejection(session: Session) -> RejectionReason:
    (event,) = session.decision.events
    assert isinstance(event, CommandRejected)
    return event.reason


def test_create_starts_an_active_session_with_the_initial_agent() -> None:
    command = create(title="T", system_prompt="be brief", initial_agent=AgentType.CODER)
    session = Session()

    decision = session.when(command)

    (event,) = decision.events
    assert isinstance(event, SessionCreated)
    assert event.id == derive_id("event", command.id, 0)
    assert event.tenant_id == TENANT
    state = session.current
    assert state.status is SessionStatus.ACTIVE
    assert state.current_agent is AgentType.CODER
    assert state.system_prompt == "be brief"
    assert decision.remember


def test_a_second_create_is_refused_with_session_exists_and_not_remembered() -> None:
    session = Session().given(create())

    decision = session.when(create())

    assert rejection(session) is RejectionReason.SESSION_EXISTS
    assert not decision.remember


def test_commands_for_an_unknown_session_are_refused() -> None:
    session = Session()

    decision = session.when(submit())

    assert rejection(session) is RejectionReason.UNKNOWN_SESSION
    assert decision.state is None
    assert not decision.remember


def test_internal_commands_for_an_unknown_session_are_ignored() -> None:
    live = Session().given(create(), submit())
    orphan = complete(live.current)

    decision = decide(None, orphan, now=T0)

    assert decision.ignored


@pytest.mark.parametrize(
    "make",
    [
        lambda s: submit(tenant_id="tenant-b"),
        lambda s: switch(AgentType.CODER, tenant_id="tenant-b"),
        lambda s: close(tenant_id="tenant-b"),
        lambda s: update(title="mine now", tenant_id="tenant-b"),
        lambda s: reopen(tenant_id="tenant-b"),
    ],
)
def test_another_tenant_gets_the_answer_for_a_session_that_does_not_exist(
    make: Callable[[Session], SessionCommand],
) -> None:
    session = Session().given(create(), submit())
    before = session.current
    command = make(session)

    decision = session.when(command)
    unknown = decide(None, command, now=session.clock)

    (event,) = decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.UNKNOWN_SESSION
    assert event.tenant_id == "tenant-b"  # the publisher's tenant, for the audit trail
    assert decision.events == unknown.events  # indistinguishable from no session at all
    assert decision.state == before
    assert not decision.remember


@pytest.mark.parametrize(
    "make",
    [
        lambda s: complete(s.current, tenant_id="tenant-b"),
        lambda s: expire(s.current, tenant_id="tenant-b"),
    ],
)
def test_internal_commands_naming_another_tenant_are_ignored(
    make: Callable[[Session], SessionCommand],
) -> None:
    session = Session().given(create(), submit())
    before = session.current

    decision = session.when(make(session))

    assert decision.ignored
    assert decision.state == before


def test_a_create_from_another_tenant_gets_the_same_answer_as_the_owner_s() -> None:
    session = Session().given(create())

    foreign = decide(session.current, create(tenant_id="tenant-b"), now=T0)
    own = decide(session.current, create(), now=T0)

    assert [type(e) for e in foreign.events] == [type(e) for e in own.events] == [CommandRejected]
    assert foreign.rejection is own.rejection is RejectionReason.SESSION_EXISTS
    assert foreign.state == session.current  # never overwritten


def test_update_keeps_fields_left_out() -> None:
    session = Session().given(create(title="old", description="desc"))

    session.when(update(title="new"))

    assert (session.current.title, session.current.description) == ("new", "desc")


def test_close_refuses_later_commands_until_reopened() -> None:
    session = Session().given(create(), close(reason="done"))
    assert session.current.status is SessionStatus.CLOSED

    decision = session.when(submit())
    assert rejection(session) is RejectionReason.SESSION_CLOSED
    assert decision.remember  # a reopen may change the answer: keep the refusal

    session.when(reopen())
    assert types(session.decision) == ["SessionReopened"]
    assert types(session.when(submit())) == ["UserMessageAccepted", "TurnStarted"]


def test_reopen_of_an_active_session_is_refused() -> None:
    session = Session().given(create())

    session.when(reopen())

    assert rejection(session) is RejectionReason.NOT_CLOSED


def test_close_during_a_turn_fails_the_turn_first() -> None:
    session = Session().given(create(), submit(), submit())  # one running, one queued

    decision = session.when(close())

    assert types(decision) == ["TurnFailed", "SessionClosed"]
    failed = decision.events[0]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "session_closed"
    assert session.current.turn is None
    assert session.current.queue == ()


def test_expire_applies_only_if_nothing_happened_since_the_job_looked() -> None:
    session = Session().given(create(), submit())
    seen = session.current.last_activity_at
    session.when(complete(session.current))  # activity after the job's observation

    decision = session.when(expire(session.current, last_activity_at=seen))

    assert decision.ignored
    assert session.current.status is SessionStatus.ACTIVE


def test_expire_of_an_idle_session() -> None:
    session = Session().given(create(), submit())
    session.when(complete(session.current))
    last = session.current.last_activity_at

    decision = session.when(expire(session.current))

    (event,) = decision.events
    assert isinstance(event, SessionExpired)
    assert event.last_activity_at == last
    assert session.current.status is SessionStatus.EXPIRED
    assert session.current.last_activity_at == last  # expiry is not activity


def test_expire_with_a_turn_in_flight_fails_the_turn_then_expires() -> None:
    session = Session().given(create(), submit(), submit())

    decision = session.when(expire(session.current))

    assert types(decision) == ["TurnFailed", "SessionExpired"]
    assert session.current.turn is None
    assert session.current.queue == ()


def test_a_closed_session_can_expire_too() -> None:
    session = Session().given(create(), close())

    assert types(session.when(expire(session.current))) == ["SessionExpired"]


def test_an_expired_session_refuses_everything_for_good() -> None:
    session = Session().given(create())
    session.when(expire(session.current))
    state = session.current

    for command in (submit(), reopen(), close(), update(title="x"), switch(AgentType.ASK)):
        decision = session.when(command)
        assert rejection(session) is RejectionReason.SESSION_EXPIRED
        assert not decision.remember
    assert session.when(expire(state)).ignored


def test_internal_commands_after_the_turn_ended_are_ignored() -> None:
    session = Session().given(create(), submit())
    stale_complete = complete(session.current)
    stale_fail = fail(session.current)
    session.when(stale_complete)

    assert session.when(stale_complete).ignored  # redelivered
    assert session.when(stale_fail).ignored  # overtaken


def test_replaying_the_events_rebuilds_the_state() -> None:
    session = Session().given(create(title="t"), submit("a"), submit("b"))
    session.when(switch(AgentType.ARCHITECT, reason="design"))
    session.when(complete(session.current, "answer a"))
    session.when(fail(session.current))
    session.when(update(description="d"))

    assert replay(session.history) == session.current


def test_event_times_come_from_the_caller() -> None:
    when = T0 + timedelta(days=3)

    decision = decide(None, create(), now=when)

    assert decision.events[0].occurred_at == when
    assert decision.state is not None
    assert decision.state.last_activity_at == when
