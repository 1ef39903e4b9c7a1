"""The decision table, row by row, and the hop bound. Given a fact, then at most one message."""

import json

import pytest

from contracts.agents import AgentType
from contracts.base import Message, derive_id
from contracts.codec import encode
from contracts.llm import FinishReason, LLMRequested
from contracts.session_events import (
    CommandRejected,
    RejectionReason,
    SessionCreated,
    SwitchInitiator,
    TurnCompleted,
    UserMessageAccepted,
)
from contracts.turns import CompleteTurn, FailTurn, SwitchAgentForTurn
from services.agent_orchestration import decider
from services.agent_orchestration.catalogue_file import load_default_catalogue
from services.agent_orchestration.decider import Decision, Rule, decide
from services.agent_orchestration.history_window import HistoryBudget
from services.agent_orchestration.prompt import PromptLimits, invocation_id_for
from tests.support.agent_orchestration.facts import (
    LIMITS,
    NOW,
    SESSION,
    TENANT,
    TURN,
    agent_switched,
    completed,
    failed,
    switch_call,
    turn_started,
)
from tests.support.recursion import default_recursion_limit

pytestmark = pytest.mark.unit

CATALOGUE = load_default_catalogue()


def _decide(message: Message, limits: PromptLimits = LIMITS) -> Decision:
    return decide(message, CATALOGUE, limits, NOW)


def _args(target: str, reason: str = "it is a coding task") -> str:
    return json.dumps({"target": target, "reason": reason})


# --- session facts --------------------------------------------------------------------------


def test_turn_started_requests_the_current_agent_at_the_turns_step() -> None:
    decision = _decide(turn_started(AgentType.ARCHITECT))

    assert decision.rule is Rule.TURN_STARTED
    request = decision.output
    assert isinstance(request, LLMRequested)
    assert (request.agent, request.step, request.turn_id) == (AgentType.ARCHITECT, 0, TURN)
    assert request.invocation_id == derive_id("invocation", TURN, 0)
    assert (request.session_id, request.tenant_id) == (SESSION, TENANT)


def test_an_orchestration_switch_with_a_turn_requests_the_new_agent_at_its_step() -> None:
    decision = _decide(agent_switched(AgentType.DEBUG, step=1))

    assert decision.rule is Rule.HANDOFF_CONTINUES
    request = decision.output
    assert isinstance(request, LLMRequested)
    assert (request.agent, request.step) == (AgentType.DEBUG, 1)
    assert request.invocation_id == invocation_id_for(TURN, 1)
    assert request.messages[0].content == CATALOGUE.profile(AgentType.DEBUG).system_prompt


def test_a_users_switch_without_a_turn_does_nothing() -> None:
    decision = _decide(agent_switched(initiated_by=SwitchInitiator.USER, with_turn=False))

    assert decision == Decision(Rule.USER_SWITCH)


def test_a_users_switch_never_drives_a_turn() -> None:
    decision = _decide(agent_switched(initiated_by=SwitchInitiator.USER, with_turn=True))

    assert decision == Decision(Rule.USER_SWITCH)


def test_an_orchestration_switch_without_turn_context_does_nothing() -> None:
    decision = _decide(agent_switched(with_turn=False))

    assert decision == Decision(Rule.SWITCH_WITHOUT_TURN)


@pytest.mark.parametrize(
    "fact",
    [
        SessionCreated(
            id="e1",
            session_id=SESSION,
            tenant_id=TENANT,
            title="",
            description="",
            system_prompt="",
            agent=AgentType.ORCHESTRATOR,
            metadata={},
        ),
        UserMessageAccepted(
            id="e2",
            session_id=SESSION,
            tenant_id=TENANT,
            message_id="m1",
            seq=1,
            content="hi",
            queued=False,
        ),
        TurnCompleted(
            id="e3", session_id=SESSION, tenant_id=TENANT, turn_id=TURN, agent="ask", steps=1
        ),
        CommandRejected(
            id="e4",
            session_id=SESSION,
            tenant_id=TENANT,
            rejected_command_id="c1",
            rejected_command_type="turn.switch_agent.v1",
            reason=RejectionReason.SWITCH_LIMIT_REACHED,
            detail="",
        ),
    ],
)
def test_other_session_events_are_acknowledged_without_output(fact: Message) -> None:
    assert _decide(fact) == Decision(Rule.NOT_FOR_ORCHESTRATION)


# --- LLM results ----------------------------------------------------------------------------


def test_an_allowed_switch_hands_the_turn_off() -> None:
    result = completed(tool_calls=[switch_call(_args("coder"))], content="Routing you.")

    decision = _decide(result)

    assert decision.rule is Rule.HAND_OFF
    command = decision.output
    assert isinstance(command, SwitchAgentForTurn)
    assert (command.from_agent, command.target_agent) == (AgentType.ORCHESTRATOR, AgentType.CODER)
    assert command.reason == "it is a coding task"
    # The step of the invocation that asked; session-commands assigns step + 1 to the new agent.
    assert command.step == 0
    assert command.invocation_id == result.invocation_id
    assert command.id == derive_id("turn-command", result.invocation_id)
    assert (command.session_id, command.tenant_id, command.turn_id) == (SESSION, TENANT, TURN)


def test_a_plain_answer_completes_the_turn() -> None:
    result = completed(agent=AgentType.CODER, step=1, content="def search(): ...")

    decision = _decide(result)

    assert decision.rule is Rule.ANSWER
    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert (command.agent, command.content, command.note) == (
        AgentType.CODER,
        "def search(): ...",
        None,
    )
    assert (command.step, command.usage) == (1, result.usage)
    assert command.id == derive_id("turn-command", result.invocation_id)


def test_a_blank_answer_without_tool_calls_fails_the_turn() -> None:
    decision = _decide(completed(content="  \n", finish_reason=FinishReason.LENGTH))

    assert decision.rule is Rule.EMPTY_ANSWER
    command = decision.output
    assert isinstance(command, FailTurn)
    assert command.error_class == "empty_response"
    assert "length" in command.reason


def test_an_unknown_tool_completes_with_the_text_and_a_note() -> None:
    result = completed(content="Here you go.", tool_calls=[switch_call("{}", name="run_shell")])

    decision = _decide(result)

    assert decision.rule is Rule.TOOL_NOT_ALLOWED
    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert command.content == "Here you go."
    assert command.note is not None
    assert "run_shell" in command.note


def test_a_refused_tool_call_without_text_still_gives_the_user_an_answer() -> None:
    decision = _decide(completed(tool_calls=[switch_call("{}", name="run_shell")]))

    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert command.note is not None
    assert command.content.startswith("I could not finish this request")
    assert command.note in command.content


def test_switch_agent_from_an_agent_not_granted_it_is_refused() -> None:
    data = json.loads(CATALOGUE.model_dump_json())
    data["agents"]["ask"].update(tools=[], handoffs=[])
    catalogue = type(CATALOGUE).model_validate(data)
    result = completed(agent=AgentType.ASK, content="42", tool_calls=[switch_call(_args("coder"))])

    decision = decide(result, catalogue, LIMITS, NOW)

    assert decision.rule is Rule.TOOL_NOT_ALLOWED
    assert isinstance(decision.output, CompleteTurn)
    assert decision.output.content == "42"


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("", "must be a JSON object"),
        ('["coder"]', "must be a JSON object"),
        ('{"reason": "x"}', "'target' is missing"),
        ('{"target": 3, "reason": "x"}', "'target' is missing or not a string"),
        ('{"target": "coder", "reason": 5}', "'reason' is not a string"),
    ],
)
def test_malformed_arguments_complete_with_a_note(arguments: str, problem: str) -> None:
    decision = _decide(completed(content="Let me route this.", tool_calls=[switch_call(arguments)]))

    assert decision.rule is Rule.MALFORMED_HANDOFF
    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert command.content == "Let me route this."
    assert command.note is not None
    assert problem in command.note


def test_a_missing_reason_is_tolerated() -> None:
    decision = _decide(completed(tool_calls=[switch_call('{"target": "ask"}')]))

    assert decision.rule is Rule.HAND_OFF
    assert isinstance(decision.output, SwitchAgentForTurn)
    assert decision.output.reason == ""


def test_a_reason_with_a_lone_surrogate_still_hands_off() -> None:
    # json.loads of "\\ud83d" (half an emoji) makes a string no record can carry as UTF-8:
    # building the SwitchAgentForTurn failed, the LLM result was dead-lettered and the turn
    # never ended.
    arguments = '{"target": "coder", "reason": "fix \\ud83d it"}'
    decision = _decide(completed(tool_calls=[switch_call(arguments)]))

    assert decision.rule is Rule.HAND_OFF
    assert isinstance(decision.output, SwitchAgentForTurn)
    assert decision.output.reason == "fix \ufffd it"
    encode(decision.output, source="agent-orchestration")


@pytest.mark.parametrize(
    ("agent", "target"),
    [
        (AgentType.ARCHITECT, "debug"),  # a real agent, not among the architect's handoffs
        (AgentType.ORCHESTRATOR, "wizard"),  # not an agent at all
        (AgentType.CODER, "coder"),  # itself: the session would treat it as a no-op and stall
    ],
)
def test_a_disallowed_target_completes_with_a_note(agent: AgentType, target: str) -> None:
    result = completed(agent=agent, step=1, tool_calls=[switch_call(_args(target))])

    decision = _decide(result)

    assert decision.rule is Rule.DISALLOWED_TARGET
    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert command.note is not None
    assert repr(target) in command.note
    assert command.content  # never empty, although the model wrote nothing


def test_a_valid_switch_wins_over_other_refused_calls() -> None:
    calls = [
        switch_call("{}", name="run_shell"),
        switch_call(_args("debug")),
        switch_call(_args("ask")),
    ]

    decision = _decide(completed(tool_calls=calls))

    assert isinstance(decision.output, SwitchAgentForTurn)
    assert decision.output.target_agent is AgentType.DEBUG


def test_llm_failed_fails_the_turn_with_its_error_class() -> None:
    result = failed("rate_limited", step=2)

    decision = _decide(result)

    assert decision.rule is Rule.LLM_FAILED
    command = decision.output
    assert isinstance(command, FailTurn)
    assert (command.error_class, command.step, command.agent) == ("rate_limited", 2, "coder")
    assert command.reason == "the provider's circuit is open"
    assert command.id == derive_id("turn-command", result.invocation_id)


def test_a_cancelled_invocation_passes_its_streamed_text_on_to_session_commands() -> None:
    result = failed("cancelled").model_copy(update={"partial_content": "Half an ans"})

    command = _decide(result).output

    assert isinstance(command, FailTurn)
    assert (command.error_class, command.partial_content) == ("cancelled", "Half an ans")


def test_the_same_input_gives_the_same_output() -> None:
    for fact in (turn_started(), completed(tool_calls=[switch_call(_args("coder"))]), failed()):
        assert _decide(fact) == _decide(fact)


# --- the hop bound --------------------------------------------------------------------------


def _switch_at(step: int, limits: PromptLimits = LIMITS) -> Decision:
    # Ping-pong between coder and orchestrator: each asks to hand off to the other.
    agent, target = (
        (AgentType.ORCHESTRATOR, "coder") if step % 2 == 0 else (AgentType.CODER, "orchestrator")
    )
    return _decide(
        completed(agent=agent, step=step, tool_calls=[switch_call(_args(target))]), limits
    )


def test_hops_below_the_bound_are_followed() -> None:
    assert [_switch_at(step).rule for step in range(5)] == [Rule.HAND_OFF] * 5


def test_the_hop_at_the_bound_completes_the_turn_with_a_note() -> None:
    decision = _switch_at(5)

    assert decision.rule is Rule.HOP_BOUND_REACHED
    command = decision.output
    assert isinstance(command, CompleteTurn)
    assert command.note is not None
    assert "bound of 5" in command.note
    assert command.content


@pytest.mark.parametrize("bound", [0, 1, 3])
def test_the_bound_is_configurable(bound: int) -> None:
    limits = PromptLimits(HistoryBudget(10_000, 50), max_hops_per_turn=bound)

    rules = [_switch_at(step, limits).rule for step in range(bound + 1)]

    assert rules == [Rule.HAND_OFF] * bound + [Rule.HOP_BOUND_REACHED]


def test_the_bound_applies_before_the_target_is_read() -> None:
    decision = _decide(completed(step=5, tool_calls=[switch_call("{broken")]))

    assert decision.rule is Rule.HOP_BOUND_REACHED


def test_the_documented_table_lists_every_rule() -> None:
    # decider.py's docstring is the table operators read; a rule missing there is undocumented.
    table = decider.__doc__ or ""

    assert [rule for rule in Rule if f"| {rule.value} " not in table] == []


@pytest.mark.parametrize("value", ["7" * 5_000, "[" * 5_000 + "]" * 5_000])
def test_a_switch_with_arguments_json_cannot_hold_is_malformed(value: str) -> None:
    # A plain ValueError of json.loads (not JSONDecodeError) for a 5,000-digit integer, and its
    # RecursionError for deep nesting, escaped: a dead letter, a turn that never ended.
    arguments = '{"target": "coder", "n": ' + value + "}"
    with default_recursion_limit():
        decision = _decide(completed(tool_calls=[switch_call(arguments)], content="Routing."))
    assert decision.rule is Rule.MALFORMED_HANDOFF
    assert isinstance(decision.output, CompleteTurn)
