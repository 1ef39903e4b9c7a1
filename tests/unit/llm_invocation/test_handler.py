"""The handler: numbered deltas, one kept result, replay from the kept result, abandonment."""

import asyncio

import pytest

from contracts.agents import AgentType
from contracts.base import derive_id
from contracts.codec import DecodeError, encode
from contracts.envelope import H_CAUSATION_ID, H_CORRELATION_ID
from contracts.llm import FinishReason, LLMCompleted, LLMFailed, LLMTokenDelta, Usage
from services.llm_invocation.abandonment import Abandon
from services.llm_invocation.claims import InvocationClaims
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.offline_provider import OfflineProvider
from services.llm_invocation.providers.stream_events import StreamFinished, TextDelta
from services.llm_invocation.result_store import Holder
from services.runtime import Record, RetryableError
from services.runtime.retry import Backoff
from tests.support.llm_invocation.fake_ports import MemoryResults, RecordingPublisher
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.scripted_provider import HANG, ScriptedProvider

pytestmark = pytest.mark.unit

STREAM, RESULTS = "t.llm-stream", "t.llm-results"


def _record(message: object, offset: int = 0, correlation_id: str | None = "corr-1") -> Record:
    encoded = encode(message, source="agent-orchestration", correlation_id=correlation_id)  # type: ignore[arg-type]
    return Record("t.llm-requests", 0, offset, encoded.key, encoded.value, tuple(encoded.headers))


def _handler(
    provider: object, *, lease_s: float = 10.0
) -> tuple[LLMRequestHandler, MemoryResults, RecordingPublisher]:
    results, publisher = MemoryResults(), RecordingPublisher()
    handler = LLMRequestHandler(
        invoker=Invoker(provider),  # type: ignore[arg-type]
        results=results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
        claims=InvocationClaims(results, lease_s=lease_s),
        durable_steps_backoff=Backoff(initial_s=0.001, max_s=0.01),
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
    from services.llm_invocation.providers.provider_errors import RequestRejected

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


async def test_a_mongo_outage_before_the_call_is_retryable_and_pays_nothing() -> None:
    provider = ScriptedProvider()
    handler, results, _ = _handler(provider)

    async def mongo_down(*_: object) -> None:
        raise RetryableError("MongoDB unavailable: scripted outage")

    results.claim = mongo_down  # type: ignore[method-assign,assignment]
    with pytest.raises(RetryableError):  # the runtime re-runs the record
        await handler(_record(llm_request()))
    assert provider.calls == 0


async def test_a_mongo_outage_when_keeping_retries_the_durable_steps_not_the_call() -> None:
    provider = ScriptedProvider()
    handler, results, publisher = _handler(provider)
    results.fail_keeps = 3  # the first three writes of the result fail
    request = llm_request()
    await handler(_record(request))  # returns only once kept and published: no re-run
    assert provider.calls == 1
    assert results.calls.count("keep") == 4
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMCompleted)
    assert results.kept[request.invocation_id] == result
    assert result.content == "".join(d.delta for d in publisher.messages(STREAM))  # type: ignore[attr-defined]


async def test_a_broker_outage_while_streaming_retries_the_durable_steps_not_the_call() -> None:
    provider = ScriptedProvider()
    handler, results, publisher = _handler(provider)
    publisher.fail_next = 4  # deltas and the result fail a few times
    request = llm_request()
    await handler(_record(request))
    assert provider.calls == 1
    deltas = publisher.messages(STREAM)
    assert [d.seq for d in deltas] == list(range(len(deltas)))  # type: ignore[attr-defined]
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMCompleted)
    assert result.content == "".join(d.delta for d in deltas) == "Hello world"  # type: ignore[attr-defined]
    assert results.kept[request.invocation_id] == result
    assert publisher.attempts > len(publisher.records)


async def test_a_broker_outage_after_keeping_republishes_the_kept_result() -> None:
    provider = ScriptedProvider([TextDelta("ok"), StreamFinished(FinishReason.STOP, Usage())])
    handler, results, publisher = _handler(provider)
    request = llm_request()
    publisher.fail_topic, publisher.fail_next = RESULTS, 2
    await handler(_record(request))
    assert provider.calls == 1
    assert results.calls.count("keep") == 1  # kept once; only the publish was retried
    (result,) = publisher.messages(RESULTS)
    assert results.kept[request.invocation_id] == result


async def test_a_request_held_by_another_owner_waits_and_republishes_its_result() -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider(
        [TextDelta("slow "), gate, TextDelta("answer"), StreamFinished(FinishReason.STOP, Usage())]
    )
    # A lease long enough that a loaded machine's scheduling pause (a few hundred ms) does not
    # let it lapse between two renewals (0.3 s did, once on CI: the waiter took over).
    handler, results, publisher = _handler(provider, lease_s=1.2)
    request = llm_request()
    first = asyncio.create_task(handler(_record(request)))  # the old owner, still streaming
    await asyncio.wait_for(provider.called.wait(), 2)
    second = asyncio.create_task(handler(_record(request)))  # the new owner after a rebalance
    deadline = asyncio.get_running_loop().time() + 10
    while results.calls.count("renew") < 4:  # past a whole lease: the old owner keeps renewing
        assert asyncio.get_running_loop().time() < deadline, "the lease was not renewed"
        await asyncio.sleep(0.05)
    assert not second.done()
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert provider.calls == 1
    assert results.calls.count("renew") >= 3
    one, two = publisher.messages(RESULTS)
    assert one == two
    assert isinstance(one, LLMCompleted)
    assert one.content == "slow answer"


async def test_a_lapsed_lease_is_taken_over_and_the_call_made_again() -> None:
    provider = ScriptedProvider()
    handler, results, publisher = _handler(provider, lease_s=0.3)
    request = llm_request()
    results.claims[request.invocation_id] = Holder("crashed-process#1")  # never renewed
    await asyncio.wait_for(handler(_record(request)), 5)
    assert provider.calls == 1
    assert isinstance(publisher.messages(RESULTS)[0], LLMCompleted)
    assert "take_over" in results.calls


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
    assert results.claims == {}  # released: the next owner need not wait for the lease
    assert provider.closed_streams == 1
    assert len(handler.in_flight) == 0


async def test_long_text_is_split_into_deltas_within_the_contract_limit() -> None:
    from contracts.limits import MAX_DELTA_LENGTH

    provider = ScriptedProvider(
        [TextDelta("y" * (MAX_DELTA_LENGTH * 2 + 1)), StreamFinished(FinishReason.STOP, Usage())]
    )
    handler, _, publisher = _handler(provider)
    await handler(_record(llm_request()))
    deltas = publisher.messages(STREAM)
    assert [len(d.delta) for d in deltas] == [MAX_DELTA_LENGTH, MAX_DELTA_LENGTH, 1]  # type: ignore[attr-defined]
    assert [d.seq for d in deltas] == [0, 1, 2]  # type: ignore[attr-defined]


async def test_tool_calls_no_record_can_carry_are_answered_as_a_bad_response() -> None:
    from contracts.limits import MAX_TOOL_ARGUMENTS_LENGTH, MAX_TOOL_CALLS
    from services.llm_invocation.providers.stream_events import ToolCallDelta

    # Within every length limit of the contract, but JSON writes a control character as six
    # bytes: 16 calls of 16,000 of them are ~1.5 MB. It was dead-lettered without any result.
    arguments = '"' + "\u0001" * (MAX_TOOL_ARGUMENTS_LENGTH - 2) + '"'
    calls = [ToolCallDelta(i, f"call-{i}", "read_file", arguments) for i in range(MAX_TOOL_CALLS)]
    provider = ScriptedProvider([*calls, StreamFinished(FinishReason.TOOL_CALLS, Usage())])
    handler, results, publisher = _handler(provider)
    request = llm_request()
    await handler(_record(request))

    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.retryable) == ("bad_response", False)
    assert "too large to publish" in result.message
    assert results.kept[request.invocation_id] == result
    assert provider.calls == 1
