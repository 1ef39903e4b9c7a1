"""Prompt building: the parts in order, tool definitions per agent, ids and overrides."""

import json

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.base import derive_id
from contracts.codec import encode
from contracts.session_events import ConversationContext
from services.agent_orchestration.catalogue import AgentCatalogue
from services.agent_orchestration.catalogue_file import load_default_catalogue, parse_catalogue
from services.agent_orchestration.history_window import HistoryBudget
from services.agent_orchestration.prompt import (
    NO_HANDOFF_INSTRUCTION,
    PromptLimits,
    TurnStep,
    build_llm_request,
    tools_for,
)
from tests.support.agent_orchestration.facts import LIMITS, NOW, context, message

pytestmark = pytest.mark.unit

CATALOGUE = load_default_catalogue()


def _turn(
    agent: AgentType = AgentType.ORCHESTRATOR,
    step: int = 0,
    ctx: ConversationContext | None = None,
) -> TurnStep:
    return TurnStep(
        tenant_id="tenant-a",
        session_id="session-1",
        turn_id="turn-1",
        step=step,
        agent=agent,
        context=ctx or context(),
    )


def test_parts_come_in_order_agent_prompt_session_prompt_history() -> None:
    ctx = context(
        message(1, MessageRole.USER, "hello"),
        message(2, MessageRole.ASSISTANT, "hi, how can I help?", agent=AgentType.ORCHESTRATOR),
        message(3, MessageRole.USER, "Implement quicksort."),
        system_prompt="Answer in French.",
    )

    request = build_llm_request(_turn(ctx=ctx), CATALOGUE, LIMITS, NOW)

    assert [(m.role, m.content) for m in request.messages] == [
        (MessageRole.SYSTEM, CATALOGUE.profile(AgentType.ORCHESTRATOR).system_prompt),
        (MessageRole.SYSTEM, "Answer in French."),
        (MessageRole.USER, "hello"),
        (MessageRole.ASSISTANT, "hi, how can I help?"),
        (MessageRole.USER, "Implement quicksort."),
    ]


def test_an_empty_session_prompt_is_left_out() -> None:
    request = build_llm_request(_turn(ctx=context(system_prompt="  ")), CATALOGUE, LIMITS, NOW)

    assert [m.role for m in request.messages] == [MessageRole.SYSTEM, MessageRole.USER]


def test_history_is_cut_to_the_budget() -> None:
    ctx = context(*(message(seq, MessageRole.USER, "m" * 100) for seq in range(1, 11)))
    limits = PromptLimits(HistoryBudget(max_chars=250, max_messages=50), max_hops_per_turn=5)

    request = build_llm_request(_turn(ctx=ctx), CATALOGUE, limits, NOW)

    history = [m for m in request.messages if m.role is not MessageRole.SYSTEM]
    assert len(history) == 2


def test_speakers_are_named_in_the_format_providers_accept() -> None:
    ctx = context(
        message(1, MessageRole.USER, "hi", author_name="Zoë O'Neil"),
        message(2, MessageRole.ASSISTANT, "hello", agent=AgentType.ASK),
        message(3, MessageRole.USER, "again", author_name="!!!"),
    )

    request = build_llm_request(_turn(ctx=ctx), CATALOGUE, LIMITS, NOW)

    assert [m.name for m in request.messages[1:]] == ["Zo_O_Neil", "ask", None]


def test_ids_are_derived_from_turn_and_step() -> None:
    first = build_llm_request(_turn(step=2), CATALOGUE, LIMITS, NOW)
    again = build_llm_request(_turn(step=2), CATALOGUE, LIMITS, NOW)
    other_step = build_llm_request(_turn(step=3), CATALOGUE, LIMITS, NOW)

    assert first.invocation_id == derive_id("invocation", "turn-1", 2)
    assert first.id == first.invocation_id
    assert first == again
    assert other_step.invocation_id != first.invocation_id


def test_model_and_temperature_come_from_the_catalogue() -> None:
    data = json.loads(CATALOGUE.model_dump_json())
    data["agents"]["coder"].update(model="big-coder", temperature=0.3, max_tokens=900)
    catalogue = parse_catalogue(data, "test")

    request = build_llm_request(_turn(AgentType.CODER), catalogue, LIMITS, NOW)
    default = build_llm_request(_turn(AgentType.ASK), catalogue, LIMITS, NOW)

    assert (request.model, request.temperature, request.max_tokens) == ("big-coder", 0.3, 900)
    assert default.model is None


@pytest.mark.parametrize("agent", list(AgentType))
def test_each_agent_is_offered_switch_agent_with_exactly_its_targets(agent: AgentType) -> None:
    [tool] = [
        t for t in tools_for(agent, CATALOGUE, handoffs_closed=False) if t.name == "switch_agent"
    ]

    assert tool.name == "switch_agent"
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "target": {
                "type": "string",
                "enum": [target.value for target in CATALOGUE.profile(agent).handoffs],
            },
            "reason": {"type": "string"},
        },
        "required": ["target", "reason"],
    }
    for target in CATALOGUE.profile(agent).handoffs:
        assert f"- {target.value}: " in tool.description


def test_an_agent_without_handoffs_is_offered_no_tools() -> None:
    data = json.loads(CATALOGUE.model_dump_json())
    data["agents"]["ask"].update(tools=[], handoffs=[])
    catalogue: AgentCatalogue = parse_catalogue(data, "test")

    request = build_llm_request(_turn(AgentType.ASK), catalogue, LIMITS, NOW)

    assert request.tools == []
    assert NO_HANDOFF_INSTRUCTION not in request.messages[0].content


def test_the_handoffs_closed_withholds_switch_agent_and_says_so() -> None:
    request = build_llm_request(_turn(AgentType.ARCHITECT, step=5), CATALOGUE, LIMITS, NOW)
    before = build_llm_request(_turn(AgentType.ARCHITECT, step=4), CATALOGUE, LIMITS, NOW)

    assert request.tools == []
    assert request.messages[0].content.endswith(NO_HANDOFF_INSTRUCTION)
    assert [tool.name for tool in before.tools] == ["switch_agent"]


def test_the_request_encodes_for_kafka() -> None:
    request = build_llm_request(_turn(), CATALOGUE, LIMITS, NOW)

    record = encode(request, source="agent-orchestration")

    assert record.key == b"session-1"


def test_at_the_sessions_switch_cap_no_handoff_is_offered() -> None:
    capped = context(switch_count=10)
    below = context(switch_count=9)

    request = build_llm_request(
        _turn(AgentType.ARCHITECT, step=1, ctx=capped), CATALOGUE, LIMITS, NOW
    )
    before = build_llm_request(
        _turn(AgentType.ARCHITECT, step=1, ctx=below), CATALOGUE, LIMITS, NOW
    )

    assert request.tools == []
    assert request.messages[0].content.endswith(NO_HANDOFF_INSTRUCTION)
    assert [tool.name for tool in before.tools] == ["switch_agent"]
