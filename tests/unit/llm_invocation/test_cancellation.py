"""A cancelled turn's invocation: aborted with the streamed text, or not called at all."""

import asyncio
from datetime import UTC, datetime

import pytest

from contracts.agents import AgentType
from contracts.llm import LLMFailed, LLMTokenDelta
from contracts.mid_turn import CancellationReason
from contracts.session_events import TurnCancelled
from services.llm_invocation.abandonment import CANCELLED, abandonment_for
from services.llm_invocation.claims import InvocationClaims
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.stream_events import TextDelta
from services.runtime import Record
from services.runtime.retry import Backoff
from tests.support.llm_invocation.fake_ports import MemoryResults, RecordingPublisher
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.scripted_provider import HANG, ScriptedProvider

pytestmark = pytest.mark.unit

STREAM, RESULTS = "t.llm-stream", "t.llm-results"


def _record(message: object) -> Record:
    from contracts.codec import encode

    encoded = encode(message, source="agent-orchestration")  # type: ignore[arg-type]
    return Record("t.llm-requests", 0, 0, encoded.key, encoded.value, tuple(encoded.headers))


def _handler(provider: ScriptedProvider) -> tuple[LLMRequestHandler, RecordingPublisher]:
    results, publisher = MemoryResults(), RecordingPublisher()
    handler = LLMRequestHandler(
        invoker=Invoker(provider),
        results=results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
        claims=InvocationClaims(results),
        durable_steps_backoff=Backoff(initial_s=0.001, max_s=0.01),
    )
    return handler, publisher


def _cancelled(turn_id: str, *, queued: bool = False) -> TurnCancelled:
    return TurnCancelled(
        id="e-1",
        session_id="s1",
        tenant_id="acme",
        occurred_at=datetime.now(UTC),
        turn_id=turn_id,
        user_message_id="m-1",
        agent=None if queued else AgentType.ASK,
        step=None if queued else 0,
        reason=CancellationReason.CANCELLED,
        queued=queued,
    )


def test_a_cancelled_turn_abandons_its_invocations_as_cancelled() -> None:
    rule = abandonment_for(_cancelled("t1"))
    assert rule is not None
    assert (rule.turn_id, rule.error_class) == ("t1", CANCELLED)


def test_a_queued_messages_cancelled_turn_concerns_no_invocation() -> None:
    assert abandonment_for(_cancelled("t1", queued=True)) is None


async def test_a_cancelled_invocation_answers_with_exactly_the_streamed_text() -> None:
    provider = ScriptedProvider([TextDelta("Half "), TextDelta("an ans"), HANG])
    handler, publisher = _handler(provider)
    request = llm_request(session_id="s1", turn_id="t1")
    running = asyncio.create_task(handler(_record(request)))
    await asyncio.wait_for(provider.called.wait(), 2)

    def streamed() -> str:
        return "".join(d.delta for d in publisher.messages(STREAM) if isinstance(d, LLMTokenDelta))

    async with asyncio.timeout(2):  # both pieces published, the provider now hangs
        while streamed() != "Half an ans":  # noqa: ASYNC110 - a condition on a recording fake
            await asyncio.sleep(0.01)

    rule = abandonment_for(_cancelled("t1"))
    assert rule is not None
    assert handler.in_flight.abandon(rule) == 1
    await asyncio.wait_for(running, 2)

    deltas = [d for d in publisher.messages(STREAM) if isinstance(d, LLMTokenDelta)]
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.retryable) == ("cancelled", False)
    assert result.partial_content == "".join(d.delta for d in deltas) == "Half an ans"
    assert provider.closed_streams == 1


async def test_a_request_of_a_turn_seen_cancelled_is_not_paid_for() -> None:
    provider = ScriptedProvider()
    handler, publisher = _handler(provider)
    handler.cancelled.add("t1", "cancelled")

    await handler(_record(llm_request(session_id="s1", turn_id="t1", step=1)))

    assert provider.calls == 0
    (result,) = publisher.messages(RESULTS)
    assert isinstance(result, LLMFailed)
    assert (result.error_class, result.partial_content) == ("cancelled", "")
