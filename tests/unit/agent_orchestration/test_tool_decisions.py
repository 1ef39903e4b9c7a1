"""Tools in orchestration, given / when / then: the catalogue's tools as data, a model's tool
calls → RequestToolCalls (with refusals), ToolRoundCompleted → the next prompt in OpenAI's
shape, and the per-turn tool-call bound."""

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.llm import FinishReason, LLMRequested, ToolCall
from contracts.session_events import ToolRoundCompleted
from contracts.tools import ToolCallOutcome, ToolRound, tool_call_id_for
from contracts.turns import CompleteTurn, RequestToolCalls, SwitchAgentForTurn
from services.agent_orchestration.catalogue_file import (
    CatalogueError,
    load_catalogue,
    load_default_catalogue,
)
from services.agent_orchestration.decider import Rule, decide
from services.agent_orchestration.prompt import NO_TOOLS_INSTRUCTION, PromptLimits
from services.agent_orchestration.tool_specs import ToolSpec, argument_problem
from tests.support.agent_orchestration.facts import (
    LIMITS,
    NOW,
    SESSION,
    TENANT,
    TURN,
    agent_switched,
    completed,
    context,
    message,
    switch_call,
)
from tests.support.recursion import default_recursion_limit

pytestmark = pytest.mark.unit

CATALOGUE = load_default_catalogue()


def call(name: str, arguments: dict[str, Any] | str, call_id: str = "model-1") -> ToolCall:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=call_id, name=name, arguments=raw)


def calls_of(*tool_calls: ToolCall, agent: AgentType = AgentType.CODER) -> RequestToolCalls:
    decision = decide(
        completed(
            agent=agent,
            step=1,
            content="Let me look.",
            tool_calls=list(tool_calls),
            finish_reason=FinishReason.TOOL_CALLS,
        ),
        CATALOGUE,
        LIMITS,
        NOW,
    )
    assert decision.rule is Rule.CALL_TOOLS
    assert isinstance(decision.output, RequestToolCalls)
    return decision.output


def round_completed(*outcomes: ToolCallOutcome, step: int = 2) -> ToolRoundCompleted:
    return ToolRoundCompleted(
        id="event-9",
        session_id=SESSION,
        tenant_id=TENANT,
        occurred_at=NOW,
        turn_id=TURN,
        step=step,
        agent=AgentType.CODER,
        context=context(message(1, MessageRole.USER, "read file app.py")),
        rounds=[ToolRound(step=step - 1, assistant_content="Let me look.", calls=list(outcomes))],
    )


# --- the catalogue --------------------------------------------------------------------------------


def test_the_default_catalogue_grants_coder_and_debug_the_file_tools() -> None:
    for agent in (AgentType.CODER, AgentType.DEBUG):
        granted = CATALOGUE.granted_tools(agent)
        assert {"read_file", "list_directory"} <= set(granted)
        assert granted["read_file"].runs_on == "client"
    assert CATALOGUE.tools["write_file"].needs_approval
    assert not CATALOGUE.granted_tools(AgentType.ASK)


def _catalogue_with(tmp_path: Path, tools: dict[str, Any], grant: list[str]) -> Path:
    data = json.loads(CATALOGUE.model_dump_json())
    data["tools"] = tools
    data["agents"]["coder"]["tools"] = ["switch_agent", *grant]
    data["agents"]["debug"]["tools"] = ["switch_agent"]
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("tools", "grant", "problem"),
    [
        (
            # A lone surrogate escape of a JSON file: every request of the coder failed to
            # encode after start-up (dead-lettered, the turn never ending).
            {
                "t": {
                    "description": "d",
                    "runs_on": "client",
                    "parameters": {"type": "object", "description": "half \ud83d"},
                }
            },
            ["t"],
            "tools.t.parameters: cannot be sent",
        ),
        (
            {"t": {"description": "d", "runs_on": "client", "parameters": {"type": "nope"}}},
            ["t"],
            "tools.t.parameters: not a valid JSON Schema",
        ),
        (
            {"t": {"description": "d", "runs_on": "client", "parameters": {"type": "string"}}},
            ["t"],
            "tools.t.parameters: must be an object schema",
        ),
        (
            {"t": {"description": "d", "runs_on": "somewhere"}},
            ["t"],
            "tools.t.runs_on",
        ),
        (
            # RunsOn allows it, the MCP servers file refuses the name: unknown_server at run time.
            {"t": {"description": "d", "runs_on": "mcp:Search"}},
            ["t"],
            "tools.t.runs_on: MCP server name 'Search'",
        ),
        (
            {"t": {"description": "d", "runs_on": "mcp:docs.v2"}},
            ["t"],
            "tools.t.runs_on: MCP server name 'docs.v2'",
        ),
        (
            # check_schema accepts any URI in a $ref; resolving it raised on every call of the
            # tool (the LLM result dead-lettered, the turn never ending).
            {
                "t": {
                    "description": "d",
                    "runs_on": "client",
                    "parameters": {"type": "object", "properties": {"p": {"$ref": "#/$defs/p"}}},
                }
            },
            ["t"],
            "tools.t.parameters: $ref '#/$defs/p' cannot be resolved",
        ),
        (
            {
                "t": {
                    "description": "d",
                    "runs_on": "client",
                    "parameters": {"type": "object", "$ref": "https://example.invalid/t.json"},
                }
            },
            ["t"],
            "tools.t.parameters: $ref 'https://example.invalid/t.json' cannot be resolved",
        ),
        ({}, ["read_file"], "agents.coder: unknown tool(s) read_file"),
        (
            {"switch_agent": {"description": "d", "runs_on": "client"}},
            [],
            "tools.switch_agent: the name is reserved",
        ),
    ],
)
def test_a_bad_tool_stops_the_start_with_its_field_named(
    tmp_path: Path, tools: dict[str, Any], grant: list[str], problem: str
) -> None:
    with pytest.raises(CatalogueError) as raised:
        load_catalogue(_catalogue_with(tmp_path, tools, grant))
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_refs_that_resolve_in_the_schema_load_and_check_the_arguments() -> None:
    parameters = {
        "type": "object",
        "$defs": {"path": {"type": "string"}},
        "properties": {"path": {"$ref": "#/$defs/path"}},
        "default": {"$ref": "data, not a reference"},
    }
    spec = ToolSpec(description="d", runs_on="client", parameters=parameters)
    assert argument_problem(spec, '{"path": "a.py"}') is None
    assert "is not of type 'string'" in (argument_problem(spec, '{"path": 1}') or "")


def test_a_ref_only_a_call_can_resolve_is_refused_for_the_model_to_read() -> None:
    # Under a nested $id the start-up check leaves the $ref to the call; unresolvable, it was
    # an exception out of the decider: a dead letter and a turn that never ended.
    nested = {"$id": "https://tools.example/p", "$ref": "missing.json"}
    parameters = {"type": "object", "properties": {"p": nested}}
    spec = ToolSpec(description="d", runs_on="client", parameters=parameters)
    assert "the tool's schema cannot be used" in (argument_problem(spec, '{"p": 1}') or "")


def test_an_mcp_tool_is_data_too(tmp_path: Path) -> None:
    tool = {"description": "Search the docs.", "runs_on": "mcp:docs", "idempotent": True}
    catalogue = load_catalogue(_catalogue_with(tmp_path, {"search": tool}, ["search"]))
    assert catalogue.granted_tools(AgentType.CODER)["search"].runs_on == "mcp:docs"


# --- LLMCompleted with tool calls -------------------------------------------------------------


def test_a_granted_tool_call_becomes_request_tool_calls() -> None:
    request = calls_of(call("read_file", {"path": "app.py"}))
    (requested,) = request.calls
    assert requested.tool == "read_file"
    assert requested.runs_on == "client"
    assert requested.refusal is None
    assert requested.idempotent
    assert requested.tool_call_id == tool_call_id_for(request.invocation_id, 0)
    assert len(requested.tool_call_id) <= 40
    assert request.assistant_content == "Let me look."
    assert request.max_tool_calls == LIMITS.max_tool_calls_per_turn
    assert (request.step, request.agent) == (1, AgentType.CODER)


def test_parallel_calls_keep_their_order_and_distinct_ids() -> None:
    request = calls_of(
        call("read_file", {"path": "a.py"}, "x"), call("list_directory", {"path": "."}, "x")
    )
    assert [c.tool for c in request.calls] == ["read_file", "list_directory"]
    assert len({c.tool_call_id for c in request.calls}) == 2


def test_a_needs_approval_tool_is_marked() -> None:
    request = calls_of(call("write_file", {"path": "n.py", "content": "x = 1\n"}))
    assert request.calls[0].needs_approval


def test_arguments_against_the_schema_are_refused_for_the_model_to_read() -> None:
    request = calls_of(
        call("read_file", {"file": "a.py"}), call("list_directory", "{not json", "2")
    )
    assert "invalid arguments" in (request.calls[0].refusal or "")
    assert "'path' is a required property" in (request.calls[0].refusal or "")
    assert "not JSON" in (request.calls[1].refusal or "")


def test_an_ungranted_tool_next_to_a_granted_one_is_refused_not_dropped() -> None:
    request = calls_of(
        call("read_file", {"path": "a.py"}), call("write_file", {}, "2"), agent=AgentType.DEBUG
    )
    assert request.calls[0].refusal is None
    assert "unknown tool 'write_file'" in (request.calls[1].refusal or "")


def test_only_ungranted_tools_still_complete_the_turn_with_a_note() -> None:
    decision = decide(
        completed(agent=AgentType.ASK, tool_calls=[call("read_file", {"path": "a"})]),
        CATALOGUE,
        LIMITS,
        NOW,
    )
    assert decision.rule is Rule.TOOL_NOT_ALLOWED
    assert isinstance(decision.output, CompleteTurn)


def test_a_handoff_wins_over_tool_calls_in_the_same_answer() -> None:
    decision = decide(
        completed(
            agent=AgentType.CODER,
            tool_calls=[
                call("read_file", {"path": "a.py"}),
                switch_call(json.dumps({"target": "debug", "reason": "a bug"})),
            ],
        ),
        CATALOGUE,
        LIMITS,
        NOW,
    )
    assert decision.rule is Rule.HAND_OFF
    assert isinstance(decision.output, SwitchAgentForTurn)


# --- ToolRoundCompleted → the next prompt -------------------------------------------------------


def test_answered_tools_continue_the_turn_with_the_calls_and_results_in_the_prompt() -> None:
    outcome = ToolCallOutcome(
        tool_call_id="call_a", tool="read_file", arguments='{"path": "app.py"}', content="x = 1"
    )
    denied = ToolCallOutcome(
        tool_call_id="call_b",
        tool="write_file",
        arguments="{}",
        content="denied: no",
        is_error=True,
    )
    decision = decide(round_completed(outcome, denied), CATALOGUE, LIMITS, NOW)
    assert decision.rule is Rule.TOOLS_ANSWERED
    request = decision.output
    assert isinstance(request, LLMRequested)
    assert (request.step, request.agent) == (2, AgentType.CODER)
    assistant, first, second = request.messages[-3:]
    assert assistant.role is MessageRole.ASSISTANT
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [
        ("call_a", "read_file", '{"path": "app.py"}'),
        ("call_b", "write_file", "{}"),
    ]
    assert (first.role, first.tool_call_id, first.content) == (MessageRole.TOOL, "call_a", "x = 1")
    assert (second.tool_call_id, second.content) == ("call_b", "denied: no")
    assert {t.name for t in request.tools} >= {"read_file", "list_directory"}


def test_at_the_tool_call_bound_the_tools_are_withheld_and_the_agent_told() -> None:
    limits = PromptLimits(LIMITS.history, LIMITS.max_hops_per_turn, max_tool_calls_per_turn=1)
    outcome = ToolCallOutcome(tool_call_id="call_a", tool="read_file", arguments="{}", content="")
    request = decide(round_completed(outcome), CATALOGUE, limits, NOW).output
    assert isinstance(request, LLMRequested)
    assert [t.name for t in request.tools] == ["switch_agent"]
    assert request.messages[0].content.endswith(NO_TOOLS_INSTRUCTION)


def test_after_a_hand_off_the_new_agent_sees_the_turns_rounds_each_under_its_own_agent() -> None:
    by_coder = ToolRound(
        step=1,
        agent=AgentType.CODER,
        assistant_content="Let me look.",
        calls=[
            ToolCallOutcome(
                tool_call_id="call_a", tool="read_file", arguments="{}", content="x = 1"
            )
        ],
    )
    switched = agent_switched(AgentType.DEBUG, from_agent=AgentType.CODER, step=2)
    switched = switched.model_copy(update={"rounds": [by_coder]})

    decision = decide(switched, CATALOGUE, LIMITS, NOW)

    assert decision.rule is Rule.HANDOFF_CONTINUES
    request = decision.output
    assert isinstance(request, LLMRequested)
    assert request.agent is AgentType.DEBUG
    assistant, result = request.messages[-2:]
    assert (assistant.name, [c.id for c in assistant.tool_calls]) == ("coder", ["call_a"])
    assert (result.tool_call_id, result.content) == ("call_a", "x = 1")

    by_debug = ToolRound(
        step=2,
        agent=AgentType.DEBUG,
        calls=[
            ToolCallOutcome(
                tool_call_id="call_b", tool="list_directory", arguments="{}", content="a.py"
            )
        ],
    )
    later = round_completed(*by_debug.calls, step=3).model_copy(
        update={"agent": AgentType.DEBUG, "rounds": [by_coder, by_debug]}
    )
    request = decide(later, CATALOGUE, LIMITS, NOW).output
    assert isinstance(request, LLMRequested)
    named = [(m.name, [c.id for c in m.tool_calls]) for m in request.messages if m.tool_calls]
    assert named == [("coder", ["call_a"]), ("debug", ["call_b"])]


def test_a_refusal_naming_a_key_with_a_lone_surrogate_is_still_published() -> None:
    # The refusal names where the arguments fail their schema, i.e. the model's own keys:
    # decoded JSON, which may hold a lone surrogate ("\\ud800") no record can carry. The
    # RequestToolCalls failed to build, the LLM result was dead-lettered, the turn hung.
    spec = ToolSpec(
        description="d",
        runs_on="client",
        parameters={"type": "object", "additionalProperties": {"type": "string"}},
    )

    problem = argument_problem(spec, '{"\\ud800": 1}')

    assert problem == "invalid arguments at \ufffd: 1 is not of type 'string'"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        # json.loads raises a plain ValueError for an integer of more than 4,300 digits (not
        # JSONDecodeError), and RecursionError for nesting past ~1,000 levels: each escaped
        # the decider, the LLM result was dead-lettered and the turn never ended.
        ("7" * 5_000, "Exceeds the limit"),
        ("[" * 5_000 + "]" * 5_000, "nested too deeply"),
    ],
)
def test_arguments_that_json_cannot_hold_are_refused(value: str, reason: str) -> None:
    with default_recursion_limit():
        problem = argument_problem(CATALOGUE.tools["read_file"], '{"path": ' + value + "}")
    assert problem is not None
    assert problem.startswith(f"invalid arguments: not JSON ({reason}")
