"""Tool calls, given / when / then: the turn state "awaiting tools", results in any order,
approvals and denials, the deadline, idempotency by tool call id, tenants and cancellation."""

from datetime import timedelta

import pytest

from contracts.agents import AgentType
from contracts.codec import decode, encode
from contracts.limits import MAX_TOOL_ARGUMENTS_DEPTH, MAX_TOOL_CALLS_PER_TURN
from contracts.mid_turn import MidTurnPolicy
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    RejectionReason,
    ToolApprovalRequested,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
)
from services.session_commands.domain.policy import DeciderPolicy
from services.session_commands.domain.state import Approval
from tests.support.recursion import default_recursion_limit
from tests.support.session_commands.cancellation_scenario import cancel_turn
from tests.support.session_commands.scenario import (
    Session,
    complete,
    create,
    hand_off,
    replay,
    submit,
    types,
)
from tests.support.session_commands.tool_scenario import (
    approve,
    deny,
    expire_tools,
    record_result,
    request_tools,
    submit_result,
    tool_call,
)

pytestmark = pytest.mark.unit


def running(policy: MidTurnPolicy = MidTurnPolicy.QUEUE) -> Session:
    session = Session(policy=DeciderPolicy(tool_call_timeout_s=60))
    return session.given(
        create(initial_agent=AgentType.CODER, mid_turn_policy=policy), submit("hi")
    )


def awaiting(*calls: str, approval: bool = False) -> Session:
    session = running()
    session.given(
        request_tools(
            session.current,
            *(tool_call(c, needs_approval=approval) for c in calls),
            assistant_content="Let me look.",
        )
    )
    return session


def rejection(session: Session) -> CommandRejected:
    event = session.decision.events[-1]
    assert isinstance(event, CommandRejected)
    return event


# --- RequestToolCalls ---------------------------------------------------------------------------


def test_tool_calls_put_the_turn_into_awaiting_tools_with_a_deadline() -> None:
    session = running()
    decision = session.when(request_tools(session.current, tool_call("c1"), tool_call("c2")))
    assert types(decision) == ["ToolCallRequested", "ToolCallRequested"]
    first = decision.events[0]
    assert isinstance(first, ToolCallRequested)
    assert first.arguments == {"path": "a.py"}
    assert first.runs_on == "client"
    assert first.deadline == session.clock + timedelta(seconds=60)
    turn = session.current.turn
    assert turn is not None
    assert turn.tool_round is not None
    assert [c.tool_call_id for c in turn.tool_round.calls] == ["c1", "c2"]
    assert not session.current.is_idle


def test_a_needs_approval_call_asks_for_approval_instead() -> None:
    session = running()
    decision = session.when(request_tools(session.current, tool_call("c1", needs_approval=True)))
    assert types(decision) == ["ToolApprovalRequested"]
    assert isinstance(decision.events[0], ToolApprovalRequested)


def test_a_refused_call_is_answered_at_once_and_alone_continues_the_turn() -> None:
    session = running()
    decision = session.when(
        request_tools(session.current, tool_call("c1", tool="nope", refusal="unknown tool nope"))
    )
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    recorded = decision.events[0]
    assert isinstance(recorded, ToolResultRecorded)
    assert recorded.is_error
    assert recorded.source == "runtime"
    assert recorded.content == "unknown tool nope"


def test_arguments_that_are_not_a_json_object_are_refused() -> None:
    session = running()
    decision = session.when(request_tools(session.current, tool_call("c1", arguments="[1, 2]")))
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    assert "not a JSON object" in decision.events[0].content  # type: ignore[attr-defined]


def test_arguments_with_an_integer_the_session_store_cannot_keep_are_refused() -> None:
    """A model may write any JSON number; BSON keeps 64-bit integers. Accepted, such a call
    would be a session document that cannot be written (and fails its whole group commit)."""
    session = running()
    arguments = '{"path": "a", "offsets": [1, {"at": 100000000000000000000}]}'
    decision = session.when(request_tools(session.current, tool_call("c1", arguments=arguments)))
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    assert "does not fit in 64 bits" in decision.events[0].content  # type: ignore[attr-defined]


def test_a_turn_beyond_the_tool_call_ceiling_fails() -> None:
    session = running()
    calls = [tool_call(f"c{i}") for i in range(16)]
    for _ in range(3):
        session.given(request_tools(session.current, *calls[:16]))
        for call in calls:
            session.given(submit_result(call.tool_call_id))
        calls = [tool_call(f"{c.tool_call_id}x") for c in calls]
    assert session.current.turn is not None
    assert session.current.turn.tool_calls_made() == 48 <= MAX_TOOL_CALLS_PER_TURN
    decision = session.when(request_tools(session.current, *calls[:3]))
    assert types(decision) == ["TurnFailed"]
    failed = decision.events[0]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_call_limit"


def test_a_repeated_request_while_awaiting_is_ignored() -> None:
    session = awaiting("c1")
    assert session.current.turn is not None
    decision = session.when(request_tools(session.current, tool_call("c9")))
    assert decision.ignored


# --- results ------------------------------------------------------------------------------------


def test_results_in_any_order_continue_the_turn_once_all_are_in() -> None:
    session = awaiting("c1", "c2")
    first = session.when(submit_result("c2", "two"))
    assert types(first) == ["ToolResultRecorded"]
    last = session.when(submit_result("c1", "one"))
    assert types(last) == ["ToolResultRecorded", "ToolRoundCompleted"]
    completed = last.events[-1]
    assert isinstance(completed, ToolRoundCompleted)
    assert completed.step == 1
    assert completed.agent is AgentType.CODER
    (round_,) = completed.rounds
    assert round_.assistant_content == "Let me look."
    assert [(c.tool_call_id, c.content) for c in round_.calls] == [("c1", "one"), ("c2", "two")]
    assert completed.context.messages[-1].content == "hi"
    turn = session.current.turn
    assert turn is not None
    assert turn.step == 1
    assert turn.tool_round is None


def test_a_repeated_result_for_a_tool_call_changes_nothing() -> None:
    session = awaiting("c1", "c2")
    session.given(submit_result("c1", "first"))
    decision = session.when(submit_result("c1", "second"))
    assert decision.events == ()
    turn = session.current.turn
    assert turn is not None
    assert turn.tool_round is not None
    assert turn.tool_round.calls[0].result == "first"


def test_a_result_after_the_round_completed_changes_nothing() -> None:
    session = awaiting("c1")
    session.given(submit_result("c1"))
    assert session.when(submit_result("c1", "again")).events == ()


def test_a_result_for_an_unknown_call_is_refused() -> None:
    session = awaiting("c1")
    session.when(submit_result("c-unknown"))
    assert rejection(session).reason is RejectionReason.TOOL_CALL_NOT_PENDING


def test_a_result_when_no_turn_runs_is_refused() -> None:
    session = Session().given(create())
    session.when(submit_result("c1"))
    assert rejection(session).reason is RejectionReason.TOOL_CALL_NOT_PENDING


def test_a_result_for_another_tenants_session_is_refused_as_unknown_session() -> None:
    session = awaiting("c1")
    decision = session.when(submit_result("c1", tenant_id="tenant-b"))
    assert rejection(session).reason is RejectionReason.UNKNOWN_SESSION
    assert not decision.remember
    turn = session.current.turn
    assert turn is not None
    assert turn.tool_round is not None
    assert turn.tool_round.calls[0].result is None


def test_an_upstream_result_for_an_mcp_call_is_refused() -> None:
    session = running()
    session.given(request_tools(session.current, tool_call("c1", runs_on="mcp:files")))
    session.when(submit_result("c1"))
    assert "runs on mcp:files" in rejection(session).detail


def test_tool_invocation_records_mcp_results_and_stale_ones_are_ignored() -> None:
    session = running()
    session.given(request_tools(session.current, tool_call("c1", runs_on="mcp:files")))
    decision = session.when(record_result(session.current, "c1", "mcp:files", "listing"))
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    assert decision.events[0].source == "mcp:files"  # type: ignore[attr-defined]
    again = session.when(record_result(session.current, "c1", "mcp:files", "listing"))
    assert again.ignored


def test_a_recorded_result_from_the_wrong_executor_is_ignored() -> None:
    session = awaiting("c1")
    assert session.when(record_result(session.current, "c1", "mcp:files")).ignored


# --- approval -----------------------------------------------------------------------------------


def test_approval_requests_the_call_for_its_executor() -> None:
    session = awaiting("c1", approval=True)
    decision = session.when(approve("c1", requested_by="ann"))
    assert types(decision) == ["ToolCallApproved", "ToolCallRequested"]
    requested = decision.events[1]
    assert isinstance(requested, ToolCallRequested)
    assert requested.tool_call_id == "c1"
    assert requested.arguments == {"path": "a.py"}
    turn = session.current.turn
    assert turn is not None
    assert turn.tool_round is not None
    assert turn.tool_round.calls[0].approval is Approval.APPROVED
    assert types(session.when(submit_result("c1"))) == ["ToolResultRecorded", "ToolRoundCompleted"]


def test_a_result_before_approval_is_refused() -> None:
    session = awaiting("c1", approval=True)
    session.when(submit_result("c1"))
    assert "awaits approval" in rejection(session).detail


def test_a_denial_answers_the_call_with_denied_and_the_reason() -> None:
    session = awaiting("c1", approval=True)
    decision = session.when(deny("c1", reason="not on prod"))
    assert types(decision) == ["ToolCallDenied", "ToolRoundCompleted"]
    completed = decision.events[-1]
    assert isinstance(completed, ToolRoundCompleted)
    outcome = completed.rounds[0].calls[0]
    assert outcome.content == "denied: not on prod"
    assert outcome.is_error


def test_approve_and_deny_are_idempotent_and_exclusive() -> None:
    session = awaiting("c1", "c2", approval=True)
    session.given(approve("c1"))
    assert session.when(approve("c1")).events == ()
    session.when(deny("c1"))
    assert "was approved" in rejection(session).detail
    session.given(deny("c2"))
    assert session.when(deny("c2")).events == ()
    session.when(approve("c2"))
    assert "was denied" in rejection(session).detail


def test_approving_a_call_that_needs_no_approval_is_refused() -> None:
    session = awaiting("c1")
    session.when(approve("c1"))
    assert "needs no approval" in rejection(session).detail


# --- deadline, cancellation, the next step --------------------------------------------------------


def test_the_deadline_fails_the_turn_with_a_clear_reason() -> None:
    session = awaiting("c1", "c2")
    session.given(submit_result("c1"))
    early = session.when(expire_tools(session.current))
    assert early.ignored  # the job looked before the deadline passed here
    session.clock += timedelta(seconds=120)
    decision = session.when(expire_tools(session.current))
    assert types(decision) == ["TurnFailed"]
    failed = decision.events[0]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_deadline_exceeded"
    assert failed.reason.startswith("no result by ")  # as docs/tools.md shows it
    assert "read_file (c2)" in failed.reason
    assert "c1" not in failed.reason
    assert session.current.is_idle


def test_the_deadline_starts_the_next_queued_message() -> None:
    session = awaiting("c1")
    session.given(submit("queued"))
    session.clock += timedelta(seconds=120)
    decision = session.when(expire_tools(session.current))
    assert types(decision) == ["TurnFailed", "TurnStarted"]


def test_cancel_while_awaiting_tools_stops_the_turn_at_once() -> None:
    session = awaiting("c1")
    decision = session.when(cancel_turn(requested_by="ann"))
    assert types(decision) == ["TurnCancelled", "TurnStopped"]
    stopped = decision.events[1]
    assert isinstance(stopped, TurnStopped)
    assert stopped.partial_message_id is None
    assert session.current.is_idle
    session.when(submit_result("c1"))
    assert rejection(session).reason is RejectionReason.TOOL_CALL_NOT_PENDING


def test_interrupt_while_awaiting_tools_starts_the_new_message() -> None:
    session = running(MidTurnPolicy.INTERRUPT)
    session.given(request_tools(session.current, tool_call("c1")))
    decision = session.when(submit("new question"))
    assert types(decision) == ["UserMessageAccepted", "TurnCancelled", "TurnStopped", "TurnStarted"]
    started = decision.events[-1]
    assert isinstance(started, TurnStarted)
    assert started.context.messages[-1].content == "new question"


def test_the_continued_step_can_complete_the_turn() -> None:
    session = awaiting("c1")
    session.given(submit_result("c1"))
    decision = session.when(complete(session.current, "the file says data"))
    assert types(decision) == ["AssistantMessageAppended", "TurnCompleted"]
    assert decision.events[1].steps == 2  # type: ignore[attr-defined]


def test_a_second_round_carries_the_first_in_its_prompt_material() -> None:
    session = awaiting("c1")
    session.given(submit_result("c1", "one"))
    session.given(request_tools(session.current, tool_call("c2")))
    decision = session.when(submit_result("c2", "two"))
    completed = decision.events[-1]
    assert isinstance(completed, ToolRoundCompleted)
    assert completed.step == 2
    assert [r.calls[0].content for r in completed.rounds] == ["one", "two"]


def test_replaying_the_events_rebuilds_the_awaiting_state() -> None:
    session = awaiting("c1", "c2", approval=True)
    session.given(approve("c1"), deny("c2"))
    assert replay(session.history, session.policy) == session.current


def test_calls_beyond_orchestrations_bound_are_answered_without_running() -> None:
    session = running()
    decision = session.when(
        request_tools(session.current, tool_call("c1"), tool_call("c2"), max_tool_calls=1)
    )
    assert types(decision) == ["ToolCallRequested", "ToolResultRecorded"]
    refused = decision.events[1]
    assert isinstance(refused, ToolResultRecorded)
    assert refused.tool_call_id == "c2"
    assert "bound of 1 tool calls" in refused.content


def test_repeats_after_the_turn_ended_change_nothing_and_are_not_refused() -> None:
    session = awaiting("c1", "c2", approval=True)
    session.given(approve("c1"), deny("c2"), submit_result("c1"))
    session.given(complete(session.current, "done"))
    assert session.current.is_idle
    for repeat in (submit_result("c1"), approve("c1"), deny("c2"), submit_result("c2")):
        decision = session.when(repeat)
        assert decision.events == ()
        assert decision.remember
    session.when(deny("c1"))  # the opposite verdict is still refused
    assert rejection(session).reason is RejectionReason.TOOL_CALL_NOT_PENDING


def test_results_too_large_for_the_next_step_fail_the_turn() -> None:
    session = running()
    big = "é" * 16_000  # 32,000 bytes of UTF-8
    first = [tool_call(f"c{i}") for i in range(16)]
    session.given(request_tools(session.current, *first))
    session.given(*(submit_result(call.tool_call_id, big) for call in first))  # 512,000 bytes
    second = [tool_call(f"d{i}") for i in range(3)]
    session.given(request_tools(session.current, *second))
    session.given(submit_result("d0", big), submit_result("d1", big))
    decision = session.when(submit_result("d2", big))
    assert types(decision) == ["ToolResultRecorded", "TurnFailed"]
    failed = decision.events[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_results_too_large"
    assert session.current.is_idle


def test_results_are_measured_as_the_json_that_carries_them() -> None:
    # 16 x 16,000 ESC characters are 256,000 bytes of UTF-8 but 1.5 MB as JSON (`\u001b`):
    # the ToolRoundCompleted that carried them could not be published (EncodeError, the last
    # result dead-lettered, the turn left waiting for its deadline).
    session = running()
    escapes = "\x1b" * 16_000
    calls = [tool_call(f"c{i}") for i in range(16)]
    session.given(request_tools(session.current, *calls))
    session.given(*(submit_result(call.tool_call_id, escapes) for call in calls[:-1]))
    decision = session.when(submit_result(calls[-1].tool_call_id, escapes))
    assert types(decision) == ["ToolResultRecorded", "TurnFailed"]
    failed = decision.events[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_results_too_large"
    for event in decision.events:
        encode(event, source="session-commands")  # every event fits in a record


def test_a_hand_off_after_answered_tools_carries_the_rounds_under_the_agent_that_asked() -> None:
    session = awaiting("c1")
    round_done = session.when(submit_result("c1", "one")).events[-1]
    assert isinstance(round_done, ToolRoundCompleted)
    assert [(r.agent, r.step) for r in round_done.rounds] == [(AgentType.CODER, 0)]

    decision = session.when(hand_off(session.current, AgentType.DEBUG, reason="a bug"))

    switched = decision.events[-1]
    assert isinstance(switched, AgentSwitched)
    assert switched.rounds == round_done.rounds


@pytest.mark.parametrize("value", ["7" * 5_000, "[" * 5_000 + "]" * 5_000])
def test_arguments_that_json_cannot_hold_are_refused(value: str) -> None:
    # json.loads raises a plain ValueError (not JSONDecodeError) for an integer of more than
    # 4,300 digits, and RecursionError for nesting past ~1,000 levels: each escaped the
    # decider, and the turns command was dead-lettered.
    session = running()
    arguments = '{"path": ' + value + "}"
    with default_recursion_limit():
        decision = session.when(
            request_tools(session.current, tool_call("c1", arguments=arguments))
        )
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    assert "not JSON" in decision.events[0].content  # type: ignore[attr-defined]


# --- the next step's record: the rounds with the context ----------------------------------------

_CONTROL = "\x01"  # 6 bytes as JSON (`\u0001`), 1 character for every bound counted in characters


def _at_the_bounds(result_chars: int) -> Session:
    """A turn whose 50 calls (one short of its last result) and context are each within their
    own bound: a system prompt and a 19-message window (47,984 characters, 100-character
    author names) of control characters, 50 results of `result_chars` of them."""
    session = Session(policy=DeciderPolicy(tool_call_timeout_s=60))
    session.given(create(system_prompt=_CONTROL * 16_000))
    for _ in range(9):
        session.given(submit(_CONTROL * 888, author_name=_CONTROL * 100))
        session.given(complete(session.current, _CONTROL * 888))
    session.given(submit(_CONTROL * 32_000, author_name=_CONTROL * 100))
    number = 0
    for size in (16, 16, 16, 2):
        calls = []
        for _ in range(size):
            number += 1
            prefix = f"call_{number}_"
            calls.append(tool_call(prefix.ljust(128, "a"), tool="t" * 64, arguments="{}"))
        session.given(request_tools(session.current, *calls))
        for call in calls if number < 50 else calls[:-1]:
            session.given(submit_result(call.tool_call_id, _CONTROL * result_chars))
    return session


def _last_call(session: Session) -> str:
    turn = session.current.turn
    assert turn is not None
    assert turn.tool_round is not None
    return turn.tool_round.calls[-1].tool_call_id


def test_a_round_whose_record_with_the_context_would_not_fit_fails_the_turn() -> None:
    # 599,800 bytes of tool exchange (within MAX_TOOL_EXCHANGE_BYTES) and a context of escaped
    # text made a ToolRoundCompleted of 1,005,000 bytes: EncodeError, the last result
    # dead-lettered, its sender never answered, the turn waiting for its deadline.
    session = _at_the_bounds(1_999)
    decision = session.when(submit_result(_last_call(session), _CONTROL * 1_999))
    assert types(decision) == ["ToolResultRecorded", "TurnFailed"]
    failed = decision.events[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_results_too_large"
    assert session.current.is_idle
    for event in decision.events:
        encode(event, source="session-commands")


def test_a_hand_off_whose_record_would_not_fit_fails_the_turn() -> None:
    session = _at_the_bounds(1_970)
    completed = session.when(submit_result(_last_call(session), _CONTROL * 1_970)).events[-1]
    assert isinstance(completed, ToolRoundCompleted)  # it fits: 996,000 bytes
    encode(completed, source="session-commands")

    # The hand-off's AgentSwitched carries the same with a reason of 6,000 bytes as JSON.
    decision = session.when(hand_off(session.current, AgentType.DEBUG, reason=_CONTROL * 1_000))

    assert types(decision) == ["TurnFailed"]
    failed = decision.events[-1]
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_results_too_large"
    assert session.current.is_idle


@pytest.mark.parametrize("depth", [65, 250, 600])
def test_arguments_nested_too_deeply_are_answered_as_unusable_at_once(depth: int) -> None:
    # 250 levels were published in a ToolCallRequested no consumer could decode (pydantic-core
    # parses 200: a dead letter in each, the call never run); 600 raised RecursionError here.
    session = running()
    nested = '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    decision = session.when(request_tools(session.current, tool_call("c1", arguments=nested)))
    assert types(decision) == ["ToolResultRecorded", "ToolRoundCompleted"]
    refused = decision.events[0]
    assert isinstance(refused, ToolResultRecorded)
    assert refused.is_error
    assert (
        refused.content
        == f"invalid arguments: arguments nested deeper than {MAX_TOOL_ARGUMENTS_DEPTH} levels"
    )


def test_arguments_at_the_depth_bound_are_requested_in_a_record_that_decodes() -> None:
    session = running()
    nested = (
        '{"a": ' + "[" * (MAX_TOOL_ARGUMENTS_DEPTH - 1) + "]" * (MAX_TOOL_ARGUMENTS_DEPTH - 1) + "}"
    )
    decision = session.when(request_tools(session.current, tool_call("c1", arguments=nested)))
    assert types(decision) == ["ToolCallRequested"]
    record = encode(decision.events[0], source="session-commands")
    assert decode(record.value, record.headers).message == decision.events[0]


@pytest.mark.parametrize("runs_on", ["client", "mcp:files"])
def test_a_turn_failed_by_its_last_answer_starts_the_queued_message(runs_on: str) -> None:
    # The message stayed in the queue of an idle session: no turn ran for it until the next
    # message came, as the next queued message runs after any other TurnFailed.
    session = running()
    big = "é" * 16_000  # 32,000 bytes of UTF-8
    first = [tool_call(f"c{i}") for i in range(16)]
    session.given(request_tools(session.current, *first))
    session.given(*(submit_result(call.tool_call_id, big) for call in first))
    second = [tool_call("d0"), tool_call("d1"), tool_call("d2", runs_on=runs_on)]
    session.given(request_tools(session.current, *second))
    session.given(submit("queued meanwhile"))
    session.given(submit_result("d0", big), submit_result("d1", big))
    last = (
        submit_result("d2", big)
        if runs_on == "client"
        else record_result(session.current, "d2", runs_on, big)
    )

    decision = session.when(last)

    assert types(decision) == ["ToolResultRecorded", "TurnFailed", "TurnStarted"]
    started = decision.events[-1]
    assert isinstance(started, TurnStarted)
    assert started.context.messages[-1].content == "queued meanwhile"
