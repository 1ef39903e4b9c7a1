"""Which records reach orchestration's handler: its `accepts` filter on the `ce_type` header."""

import pytest

from contracts.llm import LLMCompleted, LLMFailed
from contracts.registry import type_name
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    SessionCreated,
    ToolRoundCompleted,
    TurnCompleted,
    TurnStarted,
    UserMessageAccepted,
)
from services.agent_orchestration.handler import concerns
from services.runtime.record import Record


def _record(topic: str, ce_type: str | None, value: bytes = b"{}") -> Record:
    headers = () if ce_type is None else (("ce_type", ce_type.encode()),)
    return Record(topic, 0, 0, b"session-1", value, headers)


@pytest.mark.parametrize("model", [TurnStarted, AgentSwitched, ToolRoundCompleted])
def test_the_facts_it_acts_on_reach_the_handler(model: type) -> None:
    assert concerns(_record("p.session-events", type_name(model)))


@pytest.mark.parametrize("model", [LLMCompleted, LLMFailed])
def test_every_llm_result_reaches_the_handler(model: type) -> None:
    assert concerns(_record("p.llm-results", type_name(model)))


@pytest.mark.parametrize(
    "model", [SessionCreated, UserMessageAccepted, AssistantMessageAppended, TurnCompleted]
)
def test_other_session_facts_are_skipped_without_decoding(model: type) -> None:
    # Even a body that would not decode: skipped by the header alone.
    assert not concerns(_record("p.session-events", type_name(model), b"{not json"))


@pytest.mark.parametrize("ce_type", [None, "no.such.type.v1"])
def test_a_record_of_no_known_type_reaches_the_handler_to_be_dead_lettered(
    ce_type: str | None,
) -> None:
    assert concerns(_record("p.session-events", ce_type, b"{not json"))
