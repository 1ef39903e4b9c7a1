"""The handler with a fake publisher: topics, envelope headers, and what is retried or refused.

Delivery itself (commits, dead letters on the real broker) is in the integration tests.
"""

import json

import pytest

from contracts.base import Message
from contracts.codec import DecodeError, EncodedRecord, decode, encode
from contracts.envelope import H_CAUSATION_ID, H_CORRELATION_ID, H_SOURCE, H_TRACEPARENT
from contracts.llm import LLMRequested
from contracts.session_events import SessionUpdated
from contracts.topics import TopicCatalogue, UnexpectedTopic
from contracts.turns import SwitchAgentForTurn
from services.agent_orchestration.catalogue_file import load_default_catalogue
from services.agent_orchestration.handler import OrchestrationHandler
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from tests.support.agent_orchestration.facts import (
    LIMITS,
    NOW,
    completed,
    switch_call,
    turn_started,
)

pytestmark = pytest.mark.unit

TOPICS = TopicCatalogue(prefix="p.")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class FakeBroker:
    def __init__(self, error: Exception | None = None) -> None:
        self.published: list[tuple[str, EncodedRecord]] = []
        self._error = error

    async def publish(self, topic: str, record: EncodedRecord) -> None:
        if self._error is not None:
            raise self._error
        self.published.append((topic, record))


def _handler(broker: FakeBroker) -> OrchestrationHandler:
    return OrchestrationHandler(
        topics=TOPICS,
        catalogue=load_default_catalogue(),
        limits=LIMITS,
        publish=broker.publish,
        clock=lambda: NOW,
        span_traceparent=lambda: TRACEPARENT,
    )


def _record(topic: str, message: Message, correlation_id: str | None = None) -> Record:
    encoded = encode(message, source="test", correlation_id=correlation_id)
    return Record(topic, 0, 7, encoded.key, encoded.value, tuple(encoded.headers))


def _headers(record: EncodedRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


async def test_turn_started_is_published_to_llm_requests_with_the_chains_ids() -> None:
    broker = FakeBroker()
    fact = turn_started()

    await _handler(broker)(_record("p.session-events", fact, correlation_id="command-9"))

    [(topic, record)] = broker.published
    assert topic == "p.llm-requests"
    assert record.key == fact.session_id.encode()
    headers = _headers(record)
    assert headers[H_SOURCE] == "agent-orchestration"
    assert headers[H_CORRELATION_ID] == "command-9"
    assert headers[H_CAUSATION_ID] == fact.id
    assert headers[H_TRACEPARENT] == TRACEPARENT
    assert isinstance(decode(record.value, record.headers).message, LLMRequested)


async def test_a_switch_is_published_to_turns_and_starts_a_chain_when_none_is_given() -> None:
    broker = FakeBroker()
    result = completed(tool_calls=[switch_call(json.dumps({"target": "debug", "reason": "bug"}))])

    await _handler(broker)(_record("p.llm-results", result))

    [(topic, record)] = broker.published
    assert topic == "p.turns"
    assert _headers(record)[H_CORRELATION_ID] == result.id
    assert isinstance(decode(record.value, record.headers).message, SwitchAgentForTurn)


async def test_a_redelivered_record_publishes_the_same_bytes() -> None:
    broker = FakeBroker()
    record = _record("p.session-events", turn_started())

    await _handler(broker)(record)
    await _handler(broker)(record)

    first, second = broker.published
    assert first[1].value == second[1].value


async def test_a_fact_orchestration_does_not_act_on_publishes_nothing() -> None:
    broker = FakeBroker()
    fact = SessionUpdated(
        id="event-1", session_id="session-1", tenant_id="tenant-a", title="t", description=""
    )

    await _handler(broker)(_record("p.session-events", fact))

    assert broker.published == []


async def test_a_type_not_accepted_on_the_topic_is_refused() -> None:
    with pytest.raises(DecodeError):
        await _handler(FakeBroker())(_record("p.session-events", completed(content="x")))


async def test_an_undecodable_record_is_refused_for_the_dead_letters() -> None:
    record = Record("p.llm-results", 0, 1, b"s", b"not json", ())

    with pytest.raises(DecodeError):
        await _handler(FakeBroker())(record)


async def test_a_record_from_a_foreign_topic_is_refused() -> None:
    with pytest.raises(UnexpectedTopic):
        await _handler(FakeBroker())(_record("p.commands", turn_started()))


async def test_a_broker_outage_is_retried() -> None:
    # What ServiceRuntime.publish raises while the broker is unavailable.
    broker = FakeBroker(error=RetryableError("broker unavailable for p.llm-requests"))

    with pytest.raises(RetryableError):
        await _handler(broker)(_record("p.session-events", turn_started()))


async def test_a_turn_command_no_record_can_carry_fails_the_turn_instead() -> None:
    from contracts.agents import AgentType
    from contracts.limits import MAX_TOOL_CALLS
    from contracts.llm import FinishReason, ToolCall
    from contracts.turns import FailTurn
    from services.agent_orchestration.decider import turn_command_id

    # The LLM result fits in a record (16 calls of 60 KB of JSON each: an emoji is four
    # bytes); the RequestToolCalls does not, once each call carries the refusal that quotes
    # its arguments. It was dead-lettered and the turn never ended.
    arguments = '"' + "\U0001f600" * 15_000 + '"'
    calls = [ToolCall(id=f"m-{i}", name="read_file", arguments=arguments) for i in range(16)]
    assert len(calls) == MAX_TOOL_CALLS
    result = completed(
        agent=AgentType.CODER, step=1, tool_calls=calls, finish_reason=FinishReason.TOOL_CALLS
    )
    broker = FakeBroker()

    await _handler(broker)(_record("p.llm-results", result))

    [(topic, record)] = broker.published
    assert topic == "p.turns"
    failed = decode(record.value, record.headers).message
    assert isinstance(failed, FailTurn)
    assert (failed.error_class, failed.step, failed.agent) == ("unpublishable", 1, AgentType.CODER)
    assert failed.id == turn_command_id(result.invocation_id)
    assert "turn.request_tool_calls.v1" in failed.reason
