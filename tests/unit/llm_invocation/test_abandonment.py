"""Which session facts abandon which in-flight invocations."""

from datetime import UTC, datetime

import pytest

from contracts.agents import AgentType
from contracts.session_events import (
    AgentSwitched,
    ConversationContext,
    SessionClosed,
    SessionExpired,
    SwitchInitiator,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    UserMessageAccepted,
)
from services.llm_invocation.abandonment import RunningStep, abandonment_for, superseded_by
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit

COMMON = {"session_id": "s1", "tenant_id": "t1"}
RUNNING = RunningStep("s1", "turn-a", 1)
CONTEXT = ConversationContext(messages=[], switch_count=0)


def test_the_end_of_its_turn_abandons_it() -> None:
    for fact in (
        TurnFailed(
            id="e1", turn_id="turn-a", agent=AgentType.ASK, error_class="x", reason="r", **COMMON
        ),
        TurnCompleted(id="e2", turn_id="turn-a", agent=AgentType.ASK, steps=1, **COMMON),
    ):
        rule = abandonment_for(fact)
        assert rule is not None
        assert rule.applies_to(RUNNING)
        assert not rule.applies_to(RunningStep("s1", "turn-b", 1))
        assert not rule.applies_to(RunningStep("s2", "turn-a", 1))


def test_the_end_of_its_session_abandons_every_turn() -> None:
    for fact in (
        SessionClosed(id="e1", reason="bye", **COMMON),
        SessionExpired(id="e2", last_activity_at=datetime(2025, 1, 1, tzinfo=UTC), **COMMON),
    ):
        rule = abandonment_for(fact)
        assert rule is not None
        assert rule.applies_to(RUNNING)
        assert rule.applies_to(RunningStep("s1", "turn-z", 9))
        assert not rule.applies_to(RunningStep("s2", "turn-a", 1))


def test_a_newer_turn_supersedes_the_others() -> None:
    fact = TurnStarted(
        id="e1",
        turn_id="turn-b",
        step=0,
        agent=AgentType.ASK,
        user_message_id="m",
        context=CONTEXT,
        **COMMON,
    )
    rule = abandonment_for(fact)
    assert rule is not None
    assert rule.applies_to(RUNNING)
    assert not rule.applies_to(RunningStep("s1", "turn-b", 0))


def test_a_later_step_of_the_same_turn_supersedes_earlier_steps() -> None:
    fact = AgentSwitched(
        id="e1",
        from_agent=AgentType.ORCHESTRATOR,
        to_agent=AgentType.CODER,
        reason="r",
        switch_count=1,
        initiated_by=SwitchInitiator.ORCHESTRATION,
        turn_id="turn-a",
        step=2,
        context=CONTEXT,
        **COMMON,
    )
    rule = abandonment_for(fact)
    assert rule is not None
    assert rule.applies_to(RUNNING)  # step 1 < 2
    assert not rule.applies_to(RunningStep("s1", "turn-a", 2))
    assert not rule.applies_to(RunningStep("s1", "turn-other", 1))


def test_other_facts_abandon_nothing() -> None:
    fact = UserMessageAccepted(id="e1", message_id="m", seq=1, content="hi", queued=True, **COMMON)
    assert abandonment_for(fact) is None
    switched_outside_a_turn = AgentSwitched(
        id="e2",
        from_agent=AgentType.ASK,
        to_agent=AgentType.CODER,
        reason="user asked",
        switch_count=1,
        initiated_by=SwitchInitiator.USER,
        **COMMON,
    )
    assert abandonment_for(switched_outside_a_turn) is None


def test_a_newer_request_supersedes_older_steps_and_turns_but_not_itself() -> None:
    rule = superseded_by(llm_request(session_id="s1", turn_id="turn-a", step=2))
    assert rule.applies_to(RunningStep("s1", "turn-a", 1))
    assert rule.applies_to(RunningStep("s1", "turn-old", 5))
    assert not rule.applies_to(RunningStep("s1", "turn-a", 2))
    assert not rule.applies_to(RunningStep("s2", "turn-a", 1))
