"""llm-invocation in this process on the real broker and Mongo-compatible server:
LLMRequested in → numbered deltas on llm-stream + LLMCompleted on llm-results."""

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from contracts.agents import AgentType
from contracts.base import Message, derive_id
from contracts.dead_letters import DeadLetter
from contracts.llm import FinishReason, LLMCompleted, LLMFailed, LLMTokenDelta
from contracts.session_events import TurnFailed
from contracts.topics import TopicCatalogue, TopicName
from tests.integration.llm_invocation.harness import (
    provisioned_topics,
    running,
    settings_for,
)
from tests.integration.service_harness import TopicReader, publish, publish_raw
from tests.support.llm_invocation.requests import llm_request
from tests.support.openai_server import FakeOpenAIServer, hang, text_stream

pytestmark = pytest.mark.integration

ALL = (AgentType.CODER, AgentType.ARCHITECT, AgentType.DEBUG, AgentType.ASK)


@pytest.fixture
async def topics(kafka_bootstrap_servers: str, unique_suffix: str) -> AsyncIterator[TopicCatalogue]:
    async with provisioned_topics(kafka_bootstrap_servers, f"t-{unique_suffix}.") as catalogue:
        yield catalogue


@pytest.fixture
def settings_args(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> tuple[str, str, str, str, str]:
    return (
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        f"t-{unique_suffix}.",
        f"llm-invocation-{unique_suffix}",
    )


async def test_requests_in_deltas_and_results_out(
    topics: TopicCatalogue, settings_args: tuple[str, str, str, str, str]
) -> None:
    bootstrap = settings_args[0]
    # 20 sessions, three steps each: an answer, a hand-off, an answer
    requests = [
        llm_request(
            text,
            agent=agent,
            targets=ALL if agent is AgentType.ORCHESTRATOR else (),
            session_id=f"session-{s}",
            turn_id=f"turn-{s}",
            step=step,
        )
        for s in range(20)
        for step, (agent, text) in enumerate(
            [
                (AgentType.ASK, "What is a monad?"),
                (AgentType.ORCHESTRATOR, "I get a traceback when saving"),
                (AgentType.DEBUG, "I get a traceback when saving"),
            ]
        )
    ]
    async with (
        running(settings_for(*settings_args)),
        TopicReader(bootstrap, topics.name(TopicName.LLM_RESULTS)) as results,
        TopicReader(bootstrap, topics.name(TopicName.LLM_STREAM)) as stream,
    ):
        await publish(bootstrap, topics.name(TopicName.LLM_REQUESTS), *requests)
        await results.wait_for_count(len(requests), "a result per request")
        completed = [m for m in results.messages if isinstance(m, LLMCompleted)]
        assert len(completed) == len(requests) == len(results.messages)
        answered = {c.invocation_id for c in completed if c.content}
        await stream.wait_for(
            lambda got: _complete_streams(got) >= answered, "every delta of every answer"
        )

    by_invocation: dict[str, list[LLMTokenDelta]] = defaultdict(list)
    for message in stream.messages:
        assert isinstance(message, LLMTokenDelta)
        by_invocation[message.invocation_id].append(message)
    for result in completed:
        deltas = by_invocation[result.invocation_id]
        if result.finish_reason is FinishReason.TOOL_CALLS:
            assert deltas == []
            assert result.tool_calls[0].name == "switch_agent"
            continue
        assert [d.seq for d in deltas] == list(range(len(deltas)))  # seq from 0, no gaps
        assert "".join(d.delta for d in deltas) == result.content
        assert "offline provider" in result.content
        assert result.id == derive_id("llm-result", result.invocation_id)

    # per-session order: each session's results come out in step order
    steps: dict[str, list[int]] = defaultdict(list)
    for result in completed:
        steps[result.session_id].append(result.step)
    assert all(s == [0, 1, 2] for s in steps.values())
    hand_offs = [r for r in completed if r.step == 1]
    assert all('"debug"' in r.tool_calls[0].arguments for r in hand_offs)


def _complete_streams(deltas: Sequence[Message]) -> set[str]:
    """Invocations whose deltas joined give the whole content (the result came first)."""
    texts: dict[str, str] = defaultdict(str)
    for delta in deltas:
        assert isinstance(delta, LLMTokenDelta)
        texts[delta.invocation_id] += delta.delta
    return {invocation for invocation, text in texts.items() if text.endswith("real model.")}


async def test_a_duplicate_request_record_calls_the_provider_once(
    topics: TopicCatalogue,
    settings_args: tuple[str, str, str, str, str],
    openai_server: FakeOpenAIServer,
) -> None:
    bootstrap = settings_args[0]
    openai_server.default = text_stream("Answered once.")
    settings = settings_for(
        *settings_args,
        llm_provider="openai",
        llm_base_url=openai_server.base_url,
        llm_model="fake-model",
    )
    request = llm_request("Say it once")
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.LLM_RESULTS)) as results,
    ):
        # an at-least-once producer retried: the same request twice on the topic
        await publish(bootstrap, topics.name(TopicName.LLM_REQUESTS), request, request)
        first, second = await results.wait_for_count(2, "a result for each copy")
    assert openai_server.calls == 1
    assert isinstance(first, LLMCompleted)
    assert first == second
    assert first.content == "Answered once."
    assert (first.provider, first.model) == ("openai-compatible", "fake-model")


async def test_an_invocation_whose_turn_failed_is_abandoned(
    topics: TopicCatalogue,
    settings_args: tuple[str, str, str, str, str],
    openai_server: FakeOpenAIServer,
) -> None:
    bootstrap = settings_args[0]
    openai_server.default = hang()
    settings = settings_for(
        *settings_args,
        llm_provider="openai",
        llm_base_url=openai_server.base_url,
        llm_model="fake-model",
        llm_read_timeout_s=60,
    )
    request = llm_request("Think hard", session_id="session-abandon", turn_id="turn-abandon")
    turn_failed = TurnFailed(
        id="event-turn-failed",
        session_id=request.session_id,
        tenant_id=request.tenant_id,
        turn_id=request.turn_id,
        agent=request.agent,
        error_class="session_closed",
        reason="the user closed the session",
        occurred_at=datetime.now(UTC),
    )
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.LLM_RESULTS)) as results,
    ):
        await publish(bootstrap, topics.name(TopicName.LLM_REQUESTS), request)
        await openai_server.wait_for(lambda server: server.calls == 1, within_s=30)
        await publish(bootstrap, topics.name(TopicName.SESSION_EVENTS), turn_failed)
        (result,) = await results.wait_for_count(1, "the abandoned result")
        await openai_server.wait_for(lambda server: server.disconnects == 1)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.retryable) == ("abandoned", False)
    assert "turn-abandon" in result.message


async def test_a_poison_request_is_dead_lettered_and_the_partition_keeps_flowing(
    topics: TopicCatalogue, settings_args: tuple[str, str, str, str, str]
) -> None:
    bootstrap = settings_args[0]
    request = llm_request("After the poison", session_id="session-poison")
    async with (
        running(settings_for(*settings_args)),
        TopicReader(bootstrap, topics.name(TopicName.LLM_RESULTS)) as results,
        TopicReader(bootstrap, topics.name(TopicName.DEAD_LETTERS)) as dead_letters,
    ):
        await publish_raw(
            bootstrap, topics.name(TopicName.LLM_REQUESTS), b"session-poison", b"{oops"
        )
        await publish(bootstrap, topics.name(TopicName.LLM_REQUESTS), request)
        (result,) = await results.wait_for_count(1, "the answer after the poison")
        (letter,) = await dead_letters.wait_for_count(1, "the dead letter")
    assert isinstance(result, LLMCompleted)
    assert isinstance(letter, DeadLetter)
    assert letter.origin_topic == topics.name(TopicName.LLM_REQUESTS)
