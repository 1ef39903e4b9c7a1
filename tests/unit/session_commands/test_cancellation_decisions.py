"""Stopping turns, given / when / then: CancelTurn, and every mid-turn policy in every turn state.

Turn states: idle; running (step 0); running after a hand-off hop (step 1); cancelled and waiting
for its running step to report ("stopping"). The semantics table is in docs/session-commands.md.
"""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.mid_turn import CancellationReason, MidTurnPolicy
from contracts.session_events import (
    AssistantMessageAppended,
    CommandRejected,
    RejectionReason,
    TurnCancelled,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)
from services.session_commands.domain.decider import SessionCommand
from services.session_commands.domain.policy import DeciderPolicy
from tests.support.session_commands.cancellation_scenario import cancel_turn
from tests.support.session_commands.scenario import (
    SESSION,
    Session,
    close,
    complete,
    create,
    erase,
    expire,
    fail,
    hand_off,
    submit,
    types,
    update,
)

pytestmark = pytest.mark.unit

TURN_STATES = ("idle", "running", "after_hop", "stopping")


def session_in(state: str, policy: MidTurnPolicy = MidTurnPolicy.QUEUE) -> Session:
    session = Session().given(create(mid_turn_policy=policy, initial_agent=AgentType.ORCHESTRATOR))
    if state == "idle":
        return session
    session.given(submit("first question"))
    if state == "after_hop":
        session.given(hand_off(session.current, AgentType.CODER))
    if state == "stopping":
        session.given(cancel_turn())
    return session


# --- CancelTurn ---------------------------------------------------------------------------------


def test_cancel_when_idle_is_refused_turn_not_running() -> None:
    session = session_in("idle")
    decision = session.when(cancel_turn(requested_by="ann"))
    assert types(decision) == ["CommandRejected"]
    rejected = decision.events[0]
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason is RejectionReason.TURN_NOT_RUNNING
    assert decision.remember


def test_cancel_after_the_turn_ended_is_refused_turn_not_running() -> None:
    session = session_in("running")
    turn_id = session.current.turn.turn_id  # type: ignore[union-attr]
    session.given(complete(session.current, "done"))
    decision = session.when(cancel_turn(turn_id=turn_id))
    assert decision.rejection is RejectionReason.TURN_NOT_RUNNING


@pytest.mark.parametrize("state", ["running", "after_hop"])
def test_cancel_of_the_running_turn_emits_turn_cancelled_and_keeps_the_session_taken(
    state: str,
) -> None:
    session = session_in(state)
    turn = session.current.turn
    assert turn is not None
    command = cancel_turn(requested_by="ann", reason="wrong question")

    decision = session.when(command)

    assert types(decision) == ["TurnCancelled"]
    cancelled = decision.events[0]
    assert isinstance(cancelled, TurnCancelled)
    assert cancelled.id == derive_id("event", command.id, 0)
    assert (cancelled.turn_id, cancelled.step, cancelled.agent) == (
        turn.turn_id,
        turn.step,
        turn.agent,
    )
    assert (cancelled.reason, cancelled.requested_by, cancelled.detail) == (
        CancellationReason.CANCELLED,
        "ann",
        "wrong question",
    )
    assert session.current.turn is not None
    assert session.current.turn.cancelled is CancellationReason.CANCELLED
    assert session.current.counters.turns_cancelled == 1


def test_cancel_by_turn_id_of_another_turn_is_refused() -> None:
    session = session_in("running")
    decision = session.when(cancel_turn(turn_id="turn-nobody-knows"))
    assert decision.rejection is RejectionReason.TURN_NOT_RUNNING


def test_a_second_cancel_while_stopping_is_refused() -> None:
    session = session_in("stopping")
    decision = session.when(cancel_turn())
    assert decision.rejection is RejectionReason.TURN_NOT_RUNNING
    assert "already cancelled" in decision.events[0].detail  # type: ignore[attr-defined]


def test_cancel_of_a_queued_messages_turn_drops_it_from_the_queue() -> None:
    session = session_in("running")
    queued = submit("second")
    session.given(queued)
    queued_turn = derive_id("turn", SESSION, queued.message_id)

    decision = session.when(cancel_turn(turn_id=queued_turn))

    assert types(decision) == ["TurnCancelled"]
    cancelled = decision.events[0]
    assert isinstance(cancelled, TurnCancelled)
    assert (cancelled.queued, cancelled.user_message_id) == (True, queued.message_id)
    assert session.current.queue == ()
    running = session.current.turn
    assert running is not None
    assert running.cancelled is None
    after = session.when(complete(session.current, "answer"))
    assert types(after) == ["AssistantMessageAppended", "TurnCompleted"]  # nothing queued


# --- the running step reports: the partial answer, then the next turn ---------------------------


def test_the_cancelled_steps_failure_keeps_the_streamed_text_marked_interrupted() -> None:
    session = session_in("stopping")
    turn = session.current.turn
    assert turn is not None

    decision = session.when(
        fail(session.current, error_class="cancelled", partial_content="Half an ans")
    )

    assert types(decision) == ["AssistantMessageAppended", "TurnStopped"]
    kept, stopped = decision.events
    assert isinstance(kept, AssistantMessageAppended)
    assert isinstance(stopped, TurnStopped)
    assert (kept.content, kept.interrupted, kept.in_context) == ("Half an ans", True, True)
    assert kept.message_id == derive_id("assistant-message", turn.turn_id)
    assert stopped.partial_message_id == kept.message_id
    assert stopped.reason is CancellationReason.CANCELLED
    assert session.current.turn is None
    assert session.current.recent[-1].content == "Half an ans"


def test_nothing_streamed_stops_the_turn_without_a_message() -> None:
    session = session_in("stopping")
    decision = session.when(fail(session.current, error_class="cancelled"))
    assert types(decision) == ["TurnStopped"]
    assert decision.events[0].partial_message_id is None  # type: ignore[attr-defined]


def test_an_answer_that_finished_before_the_abort_is_kept_as_the_interrupted_answer() -> None:
    session = session_in("stopping")
    decision = session.when(complete(session.current, "the whole answer"))
    assert types(decision) == ["AssistantMessageAppended", "TurnStopped"]
    kept = decision.events[0]
    assert isinstance(kept, AssistantMessageAppended)
    assert kept.interrupted
    assert "TurnCompleted" not in types(decision)


def test_a_hand_off_asked_for_by_the_cancelled_step_is_not_followed() -> None:
    session = session_in("stopping")
    decision = session.when(hand_off(session.current, AgentType.DEBUG))
    assert types(decision) == ["TurnStopped"]
    assert session.current.switch_count == 0


def test_cancel_during_a_hop_ignores_the_earlier_steps_late_result() -> None:
    session = session_in("running")
    step0 = session.current
    session.given(hand_off(step0, AgentType.CODER), cancel_turn())
    late = session.when(complete(step0, "late answer of step 0"))
    assert late.ignored  # step 0 is over; step 1 is the one that reports
    decision = session.when(fail(session.current, error_class="cancelled", partial_content="x"))
    assert types(decision) == ["AssistantMessageAppended", "TurnStopped"]
    assert decision.events[1].steps == 2  # type: ignore[attr-defined]


def test_the_next_queued_message_starts_once_the_cancelled_turn_stopped() -> None:
    session = session_in("running")
    session.given(submit("second"), cancel_turn())
    decision = session.when(fail(session.current, error_class="cancelled", partial_content="So"))
    assert types(decision) == ["AssistantMessageAppended", "TurnStopped", "TurnStarted"]
    started = decision.events[2]
    assert isinstance(started, TurnStarted)
    assert [(m.role, m.content) for m in started.context.messages] == [
        (MessageRole.USER, "first question"),
        (MessageRole.ASSISTANT, "So"),
        (MessageRole.USER, "second"),
    ]


@pytest.mark.parametrize("end", ["close", "erase", "expire"])
def test_a_session_ending_while_the_turn_stops_stops_it_instead_of_failing_it(end: str) -> None:
    # The turn ended for the user at its TurnCancelled: one end per turn, and the TurnStopped
    # that streams and waiters expect after it (no partial: its step had not reported).
    session = session_in("stopping")
    session.given(submit("queued meanwhile"))
    cancelled = session.current.turn
    assert cancelled is not None
    late_report = fail(session.current, error_class="cancelled", partial_content="So")
    endings: dict[str, SessionCommand] = {
        "close": close(),
        "erase": erase(),
        "expire": expire(session.current),
    }
    decision = session.when(endings[end])
    assert types(decision) == [
        "TurnStopped",
        {"close": "SessionClosed", "erase": "SessionErased", "expire": "SessionExpired"}[end],
    ]
    stopped = decision.events[0]
    assert isinstance(stopped, TurnStopped)
    assert stopped.turn_id == cancelled.turn_id
    assert (stopped.reason, stopped.partial_message_id) == (CancellationReason.CANCELLED, None)
    assert session.current.turn is None
    assert session.current.failed_turn is None  # a turn the user stopped is not retryable
    assert types(session.when(late_report)) == []


def test_a_session_ending_during_a_running_turn_still_fails_it() -> None:
    session = session_in("running")
    assert types(session.when(close())) == ["TurnFailed", "SessionClosed"]


# --- a message during a turn, per policy x turn state --------------------------------------------

# (policy, state) -> the events of the SubmitUserMessage
EXPECTED = {
    (MidTurnPolicy.QUEUE, "idle"): ["UserMessageAccepted", "TurnStarted"],
    (MidTurnPolicy.QUEUE, "running"): ["UserMessageAccepted"],
    (MidTurnPolicy.QUEUE, "after_hop"): ["UserMessageAccepted"],
    (MidTurnPolicy.QUEUE, "stopping"): ["UserMessageAccepted"],
    (MidTurnPolicy.REJECT, "idle"): ["UserMessageAccepted", "TurnStarted"],
    (MidTurnPolicy.REJECT, "running"): ["CommandRejected"],
    (MidTurnPolicy.REJECT, "after_hop"): ["CommandRejected"],
    (MidTurnPolicy.REJECT, "stopping"): ["CommandRejected"],
    (MidTurnPolicy.INTERRUPT, "idle"): ["UserMessageAccepted", "TurnStarted"],
    (MidTurnPolicy.INTERRUPT, "running"): ["UserMessageAccepted", "TurnCancelled"],
    (MidTurnPolicy.INTERRUPT, "after_hop"): ["UserMessageAccepted", "TurnCancelled"],
    (MidTurnPolicy.INTERRUPT, "stopping"): ["UserMessageAccepted"],
    (MidTurnPolicy.REPLACE, "idle"): ["UserMessageAccepted", "TurnStarted"],
    (MidTurnPolicy.REPLACE, "running"): ["UserMessageAccepted", "TurnCancelled"],
    (MidTurnPolicy.REPLACE, "after_hop"): ["UserMessageAccepted", "TurnCancelled"],
    (MidTurnPolicy.REPLACE, "stopping"): ["UserMessageAccepted"],
}


@pytest.mark.parametrize(("policy", "state"), sorted(EXPECTED))
def test_a_message_per_policy_and_turn_state(policy: MidTurnPolicy, state: str) -> None:
    session = session_in(state, policy)
    turn_before = session.current.turn

    decision = session.when(submit("another", author_name="ann"))

    assert types(decision) == EXPECTED[(policy, state)]
    if "UserMessageAccepted" in types(decision):
        accepted = decision.events[0]
        assert isinstance(accepted, UserMessageAccepted)
        assert accepted.queued is (state != "idle")
    if "TurnCancelled" in types(decision):
        assert turn_before is not None
        cancelled = decision.events[1]
        assert isinstance(cancelled, TurnCancelled)
        assert cancelled.turn_id == turn_before.turn_id
        assert cancelled.step == turn_before.step
        assert cancelled.requested_by == "ann"
        assert cancelled.reason is (
            CancellationReason.INTERRUPTED
            if policy is MidTurnPolicy.INTERRUPT
            else CancellationReason.REPLACED
        )
    if decision.rejection is not None:
        assert decision.rejection is RejectionReason.TURN_IN_FLIGHT


@pytest.mark.parametrize(
    ("policy", "in_next_prompt"), [(MidTurnPolicy.INTERRUPT, True), (MidTurnPolicy.REPLACE, False)]
)
def test_interrupt_keeps_the_partial_answer_in_the_next_prompt_and_replace_drops_it(
    policy: MidTurnPolicy, in_next_prompt: bool
) -> None:
    session = session_in("running", policy)
    session.given(submit("no, do this instead"))

    decision = session.when(
        fail(session.current, error_class="cancelled", partial_content="Here is the sta")
    )

    assert types(decision) == ["AssistantMessageAppended", "TurnStopped", "TurnStarted"]
    kept, _, started = decision.events
    assert isinstance(kept, AssistantMessageAppended)
    assert isinstance(started, TurnStarted)
    assert kept.interrupted
    assert kept.in_context is in_next_prompt
    contents = [m.content for m in started.context.messages]
    assert ("Here is the sta" in contents) is in_next_prompt
    assert contents[-1] == "no, do this instead"


def test_the_policy_is_set_at_creation_and_changed_with_update_session() -> None:
    session = Session().given(create(mid_turn_policy=MidTurnPolicy.REJECT))
    policies = [session.current.mid_turn_policy]
    session.given(update(mid_turn_policy=MidTurnPolicy.INTERRUPT))
    policies.append(session.current.mid_turn_policy)
    session.given(update(title="kept policy"))
    policies.append(session.current.mid_turn_policy)
    assert policies == [MidTurnPolicy.REJECT, MidTurnPolicy.INTERRUPT, MidTurnPolicy.INTERRUPT]


def test_a_session_without_a_policy_follows_the_services_default() -> None:
    session = Session(policy=DeciderPolicy(mid_turn=MidTurnPolicy.REJECT)).given(create())
    assert session.current.mid_turn_policy is None
    session.given(submit("first"))
    assert session.when(submit("second")).rejection is RejectionReason.TURN_IN_FLIGHT


def test_the_queue_bound_holds_under_interrupt_too() -> None:
    session = Session(policy=DeciderPolicy(max_queued_messages=1)).given(
        create(mid_turn_policy=MidTurnPolicy.INTERRUPT), submit("first"), submit("second")
    )
    assert session.when(submit("third")).rejection is RejectionReason.QUEUE_FULL


def test_replaying_the_events_rebuilds_the_state() -> None:
    from tests.support.session_commands.scenario import replay

    session = session_in("running", MidTurnPolicy.REPLACE)
    session.given(submit("instead"))
    session.given(fail(session.current, error_class="cancelled", partial_content="abc"))
    assert replay(session.history) == session.current
