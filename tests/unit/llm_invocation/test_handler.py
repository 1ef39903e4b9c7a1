"""The handler: numbered deltas, one kept result, replay from the kept result, abandonment."""

import asyncio

import pytest

from contracts.agents import AgentType
from contracts.base import derive_id
from contracts.codec import DecodeError, encode
from contracts.envelope import H_CAUSATION_ID, H_CORRELATION_ID
from contracts.llm import FinishReason, LLMCompleted, LLMFailed, LLMTokenDelta
from services.llm_invocation.abandonment import Abandon
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.offline_provider import OfflineProvider
from services.runtime import Record, RetryableError
from tests.support.llm_invocation.fake_ports import MemoryResults, RecordingPublisher
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.scripted_provider import HANG, ScriptedProvider

pytestmark = pytest.mark.unit

STREAM, RESULTS = "t.llm-stream", "t.llm-results"


def _record(message: object, offset: int = 0, correlation_id: str | None = "corr-1") -> Record:
    encoded = encode(message, source="agent-orchestration", correlation_id=correlation_id)  # type: ignore[arg-type]
    return Record("t.llm-requests", 0, offset, encoded.key, encoded.value, tuple(encoded.headers))


def _handler(provider: object) -> tuple[LLMRequestHandler, MemoryResults, RecordingPublisher]:
    results, publisher = MemoryResults(), RecordingPublisher()
    handler = LLMRequestHandler(
        invoker=Invoker(provider),  # type: ignore[arg-type]
        results=results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
    )
    return handler, results, publisher


async def test_deltas_are_numbered_from_zero_and_the_result_is_kept_and_published() -> None:
    handler, results, publisher = _handler(OfflineProvider())
    request = llm_request("What is a monad?", agent=AgentType.ASK)
    await handler(_record(request))

    deltas = publisher.messages(STREAM)
    assert all(isinstance(d, LLMTokenDelta) for d in deltas)
    assert [d.seq for d in deltas] == list(range(len(deltas)))  # type: ignore[attr-defined]
    assert [d.id for d in deltas] == [
        derive_id("delta", request.invocation_id, i) for i in range(len(deltas))
    ]
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMCompleted)
    assert result.id == derive_id("llm-result", request.invocation_id)
    assert result.content == "".join(d.delta for d in deltas)  # type: ignore[attr-defined]
    assert (result.provider, result.finish_reason) == ("offline", FinishReason.STOP)
    assert (result.turn_id, result.step, result.agent) == (
        request.turn_id,
        request.step,
        request.agent,
    )
    assert results.kept[request.invocation_id] == result


async def test_headers_carry_correlation_and_causation() -> None:
    handler, _, publisher = _handler(OfflineProvider())
    request = llm_request()
    await handler(_record(request, correlation_id="corr-42"))
    for _, record in publisher.records:
        headers = dict(record.headers)
        assert headers[H_CORRELATION_ID] == b"corr-42"
        assert headers[H_CAUSATION_ID] == request.id.encode()
        assert record.key == request.session_id.encode()


async def test_without_a_correlation_id_the_request_id_starts_the_chain() -> None:
    handler, _, publisher = _handler(OfflineProvider())
    request = llm_request()
    await handler(_record(request, correlation_id=None))
    assert dict(publisher.records[-1][1].headers)[H_CORRELATION_ID] == request.id.encode()


async def test_a_redelivered_request_is_answered_from_the_kept_result() -> None:
    provider = ScriptedProvider()
    handler, _, publisher = _handler(provider)
    request = llm_request()
    await handler(_record(request, offset=0))
    first = publisher.messages(RESULTS)
    await handler(_record(request, offset=0))
    assert provider.calls == 1
    second = publisher.messages(RESULTS)
    assert len(second) == 2
    assert second[0] == second[1] == first[0]


async def test_a_provider_failure_is_kept_and_published_as_llm_failed() -> None:
    from services.llm_invocation.provider_errors import RequestRejected

    handler, results, publisher = _handler(
        ScriptedProvider(RequestRejected("HTTP 400: bad", status_code=400))
    )
    request = llm_request()
    await handler(_record(request))
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.retryable) == ("invalid_request", False)
    assert "HTTP 400" in result.message
    assert results.kept[request.invocation_id] == result


async def test_a_broker_outage_is_retryable_not_a_dead_letter() -> None:
    handler, results, publisher = _handler(OfflineProvider())
    # What ServiceRuntime.publish raises while the broker is unavailable.
    publisher.fail_with = RetryableError("broker unavailable for t.llm-stream")
    with pytest.raises(RetryableError):
        await handler(_record(llm_request()))
    assert results.kept == {}


async def test_a_malformed_record_is_a_decode_error() -> None:
    handler, _, _ = _handler(OfflineProvider())
    with pytest.raises(DecodeError):
        await handler(Record("t.llm-requests", 0, 0, b"s", b"{not json", ()))


async def test_an_abandoned_invocation_ends_with_llm_failed_abandoned() -> None:
    provider = ScriptedProvider([HANG])
    handler, _results, publisher = _handler(provider)
    request = llm_request(session_id="s1", turn_id="t1")
    running = asyncio.create_task(handler(_record(request)))
    await asyncio.wait_for(provider.called.wait(), 2)
    assert handler.in_flight.abandon(Abandon("s1", "turn t1 is over", turn_id="t1")) == 1
    await asyncio.wait_for(running, 2)
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.retryable, result.message) == (
        "abandoned",
        False,
        "turn t1 is over",
    )
    assert provider.closed_streams == 1
    assert len(handler.in_flight) == 0


async def test_cancelling_the_handler_publishes_and_keeps_nothing() -> None:
    provider = ScriptedProvider([HANG])
    handler, results, publisher = _handler(provider)
    running = asyncio.create_task(handler(_record(llm_request())))
    await asyncio.wait_for(provider.called.wait(), 2)
    running.cancel()  # shutdown: the record stays uncommitted and is handled again later
    with pytest.raises(asyncio.CancelledError):
        await running
    assert publisher.messages(RESULTS) == []
    assert results.kept == {}
    assert provider.closed_streams == 1
    assert len(handler.in_flight) == 0


async def test_long_text_is_split_into_deltas_within_the_contract_limit() -> None:
    from contracts.limits import MAX_DELTA_LENGTH
    from contracts.llm import Usage
    from services.llm_invocation.stream_events import StreamFinished, TextDelta

    provider = ScriptedProvider(
        [TextDelta("y" * (MAX_DELTA_LENGTH * 2 + 1)), StreamFinished(FinishReason.STOP, Usage())]
    )
    handler, _, publisher = _handler(provider)
    await handler(_record(llm_request()))
    deltas = publisher.messages(STREAM)
    assert [len(d.delta) for d in deltas] == [MAX_DELTA_LENGTH, MAX_DELTA_LENGTH, 1]  # type: ignore[attr-defined]
    assert [d.seq for d in deltas] == [0, 1, 2]  # type: ignore[attr-defined]
