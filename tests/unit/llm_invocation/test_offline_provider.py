"""The offline provider streams like a model: deltas, tool calls, usage, finish reasons."""

import json

import pytest

from contracts.agents import AgentType
from contracts.llm import FinishReason
from services.llm_invocation.providers.offline_provider import (
    OFFLINE_MODEL,
    OfflineProvider,
    offline_answer,
)
from services.llm_invocation.providers.stream_events import (
    StreamEvent,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit

ALL = (AgentType.CODER, AgentType.ARCHITECT, AgentType.DEBUG, AgentType.ASK)


async def _events(provider: OfflineProvider, **kwargs: object) -> list[StreamEvent]:
    return [event async for event in provider.stream(llm_request(**kwargs))]  # type: ignore[arg-type]


async def test_an_answer_streams_in_small_deltas_and_says_it_is_offline() -> None:
    events = await _events(OfflineProvider(), text="What is a monad?", agent=AgentType.ASK)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 5
    assert all(len(d) <= 20 for d in deltas)
    text = "".join(deltas)
    assert text == offline_answer(AgentType.ASK, "What is a monad?")
    assert "offline provider" in text
    assert "What is a monad?" in text
    finish = events[-1]
    assert isinstance(finish, StreamFinished)
    assert finish.finish_reason is FinishReason.STOP
    assert finish.usage is not None
    assert finish.usage.completion_tokens > 0


async def test_the_same_request_streams_the_same_events() -> None:
    first = await _events(OfflineProvider(), text="Implement a parser", agent=AgentType.CODER)
    second = await _events(OfflineProvider(), text="Implement a parser", agent=AgentType.CODER)
    assert first == second


async def test_answers_are_flavoured_by_agent() -> None:
    answers = {agent: offline_answer(agent, "something") for agent in AgentType}
    assert len(set(answers.values())) == len(AgentType)
    assert "debug agent" in answers[AgentType.DEBUG]


async def test_a_request_for_another_agent_becomes_a_switch_agent_call() -> None:
    events = await _events(
        OfflineProvider(),
        text="I get a traceback when saving",
        agent=AgentType.ORCHESTRATOR,
        targets=ALL,
    )
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) == 2  # streamed in pieces, like a model does
    assert fragments[0].name == "switch_agent"
    assert fragments[0].id
    arguments = json.loads("".join(f.arguments for f in fragments))
    assert arguments["target"] == "debug"
    assert arguments["reason"]
    assert not [e for e in events if isinstance(e, TextDelta)]
    finish = events[-1]
    assert isinstance(finish, StreamFinished)
    assert finish.finish_reason is FinishReason.TOOL_CALLS


async def test_without_the_tool_it_answers() -> None:
    events = await _events(
        OfflineProvider(), text="I get a traceback", agent=AgentType.ORCHESTRATOR
    )
    assert any(isinstance(e, TextDelta) for e in events)
    assert not any(isinstance(e, ToolCallDelta) for e in events)


def test_the_model_is_the_offline_model_whatever_the_override() -> None:
    assert OfflineProvider().model_for(llm_request(model="gpt-4o")) == OFFLINE_MODEL
