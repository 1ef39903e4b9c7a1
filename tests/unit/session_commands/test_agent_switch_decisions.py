"""Agent switches by the user and by orchestration, and the cap of 10."""

import pytest

from contracts.agents import AgentType
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    RejectionReason,
    SwitchInitiator,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
)
from services.session_commands.domain.policy import MAX_AGENT_SWITCHES
from tests.support.session_commands.scenario import (
    Session,
    complete,
    create,
    hand_off,
    submit,
    switch,
    types,
)

pytestmark = pytest.mark.unit

_CYCLE = [AgentType.CODER, AgentType.ARCHITECT]


def at_the_cap() -> Session:
    session = Session().given(create())
    for i in range(MAX_AGENT_SWITCHES):
        session.when(switch(_CYCLE[i % 2]))
    assert session.current.switch_count == MAX_AGENT_SWITCHES
    return session


def test_a_user_switch_changes_the_current_agent_and_records_it() -> None:
    session = Session().given(create())

    decision = session.when(switch(AgentType.DEBUG, reason="stack trace"))

    (event,) = decision.events
    assert isinstance(event, AgentSwitched)
    assert (event.from_agent, event.to_agent, event.switch_count) == (
        AgentType.ORCHESTRATOR,
        AgentType.DEBUG,
        1,
    )
    assert event.initiated_by is SwitchInitiator.USER
    assert (event.turn_id, event.context) == (None, None)
    state = session.current
    assert state.current_agent is AgentType.DEBUG
    assert [(s.from_agent, s.to_agent, s.reason) for s in state.switch_history] == [
        (AgentType.ORCHESTRATOR, AgentType.DEBUG, "stack trace")
    ]


def test_switching_to_the_current_agent_is_a_remembered_no_op() -> None:
    session = Session().given(create())

    decision = session.when(switch(AgentType.ORCHESTRATOR))

    assert decision.events == ()
    assert decision.remember
    assert session.current.switch_count == 0


def test_a_switch_to_an_unknown_agent_is_refused_as_invalid_agent() -> None:
    session = Session().given(create(), switch(AgentType.CODER))

    decision = session.when(switch("wizard"))

    (event,) = decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.INVALID_AGENT
    assert "'wizard'" in event.detail
    assert event.rejected_command_type == "session.switch_agent.v1"
    assert decision.remember  # a redelivery is answered once, not refused again
    assert session.current.current_agent is AgentType.CODER
    assert session.current.switch_count == 1


def test_the_eleventh_user_switch_is_refused() -> None:
    session = at_the_cap()

    decision = session.when(switch(AgentType.ASK))

    (event,) = decision.events
    assert isinstance(event, CommandRejected)
    assert event.reason is RejectionReason.SWITCH_LIMIT_REACHED
    assert session.current.current_agent is _CYCLE[(MAX_AGENT_SWITCHES - 1) % 2]


def test_a_user_switch_during_a_turn_applies_from_the_next_turn() -> None:
    session = Session().given(create(), submit())

    session.when(switch(AgentType.CODER))

    assert session.current.turn is not None
    assert session.current.turn.agent is AgentType.ORCHESTRATOR
    session.when(complete(session.current))
    started = session.when(submit()).events[-1]
    assert isinstance(started, TurnStarted)
    assert started.agent is AgentType.CODER


def test_a_user_switch_during_a_turn_outlasts_a_hand_off_later_in_that_turn() -> None:
    session = Session().given(create(), submit("fix my bug"))
    session.when(switch(AgentType.ARCHITECT))

    session.when(hand_off(session.current, AgentType.CODER, reason="code it"))

    turn = session.current.turn
    assert turn is not None
    assert turn.agent is AgentType.CODER  # the hand-off carries on this turn
    assert session.current.current_agent is AgentType.ARCHITECT  # the user's choice stays
    session.when(complete(session.current, agent=AgentType.CODER))
    started = session.when(submit()).events[-1]
    assert isinstance(started, TurnStarted)
    assert started.agent is AgentType.ARCHITECT
    assert session.current.switch_count == 2  # both switches count


def test_a_hand_off_continues_the_turn_with_the_new_agent_and_its_context() -> None:
    session = Session().given(create(), submit("fix my bug"))
    turn = session.current.turn
    assert turn is not None

    decision = session.when(hand_off(session.current, AgentType.DEBUG, reason="a bug"))

    (event,) = decision.events
    assert isinstance(event, AgentSwitched)
    assert event.initiated_by is SwitchInitiator.ORCHESTRATION
    assert (event.turn_id, event.step, event.switch_count) == (turn.turn_id, 1, 1)
    assert event.context is not None
    assert event.context.switch_count == 1
    assert [m.content for m in event.context.messages] == ["fix my bug"]
    after = session.current.turn
    assert after is not None
    assert (after.step, after.agent) == (1, AgentType.DEBUG)
    assert session.current.current_agent is AgentType.DEBUG

    completed = session.when(complete(session.current, agent=AgentType.DEBUG)).events[-1]
    assert types(session.decision) == ["AssistantMessageAppended", "TurnCompleted"]
    assert isinstance(completed, TurnCompleted)
    assert completed.steps == 2


def test_the_old_step_is_stale_after_a_hand_off() -> None:
    session = Session().given(create(), submit())
    old_step = complete(session.current)
    session.when(hand_off(session.current, AgentType.CODER))

    assert session.when(old_step).ignored


def test_a_hand_off_at_the_cap_is_refused_and_ends_the_turn() -> None:
    session = at_the_cap()
    session.given(submit("q"), submit("queued"))

    decision = session.when(hand_off(session.current, AgentType.ASK))

    assert types(decision) == ["CommandRejected", "TurnFailed", "TurnStarted"]
    rejected, failed, started = decision.events
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason is RejectionReason.SWITCH_LIMIT_REACHED
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "switch_limit_reached"
    assert isinstance(started, TurnStarted)  # the queued message still gets its turn
    assert session.current.switch_count == MAX_AGENT_SWITCHES


def test_a_hand_off_to_the_agent_running_the_turn_is_refused_and_ends_the_turn() -> None:
    session = Session().given(create(), submit())

    decision = session.when(hand_off(session.current, AgentType.ORCHESTRATOR))

    assert types(decision) == ["CommandRejected", "TurnFailed"]
    rejected = decision.events[0]
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason is RejectionReason.INVALID_AGENT
    assert session.current.is_idle
    assert session.current.switch_count == 0


def test_a_user_switch_back_to_the_turns_agent_still_outlasts_a_later_hand_off() -> None:
    session = Session().given(create(), submit("fix my bug"))
    session.when(switch(AgentType.CODER))
    session.when(switch(AgentType.ORCHESTRATOR))  # the user's last word: the orchestrator

    session.when(hand_off(session.current, AgentType.DEBUG, reason="a bug"))

    assert session.current.current_agent is AgentType.ORCHESTRATOR
    session.when(complete(session.current, agent=AgentType.DEBUG))
    started = session.when(submit()).events[-1]
    assert isinstance(started, TurnStarted)
    assert started.agent is AgentType.ORCHESTRATOR
