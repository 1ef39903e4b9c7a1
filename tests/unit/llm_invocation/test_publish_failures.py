"""llm-invocation's decision on publish failures (docs/llm-invocation.md, "Failures while
publishing"): it classifies nothing itself. A broker outage, as `ServiceRuntime.publish` raises
it, is retried — after the call by the handler itself, with the completion in hand; a record the
broker refuses is permanent, never retried forever."""

import pytest

from contracts.codec import encode
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.offline_provider import OfflineProvider
from services.runtime import Record, RetryableError, UnpublishableRecord
from services.runtime.retry import Backoff
from tests.support.llm_invocation.fake_ports import MemoryResults, RecordingPublisher
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit


def _handler(publisher: RecordingPublisher) -> LLMRequestHandler:
    return LLMRequestHandler(
        invoker=Invoker(OfflineProvider()),
        results=MemoryResults(),
        publish=publisher,
        stream_topic="t.llm-stream",
        results_topic="t.llm-results",
        durable_steps_backoff=Backoff(initial_s=0.001, max_s=0.01),
    )


def _record() -> Record:
    encoded = encode(llm_request(), source="agent-orchestration")
    return Record("t.llm-requests", 0, 0, encoded.key, encoded.value, tuple(encoded.headers))


async def test_a_broker_outage_while_publishing_is_retried_until_the_result_is_out() -> None:
    publisher = RecordingPublisher()
    publisher.fail_next = 3  # RetryableError, as ServiceRuntime.publish raises it

    await _handler(publisher)(_record())  # returns: no re-run of the record (no second call)

    assert len(publisher.messages("t.llm-results")) == 1
    assert publisher.attempts == len(publisher.records) + 3


async def test_a_record_the_broker_refuses_is_not_retried() -> None:
    publisher = RecordingPublisher()
    publisher.fail_with = UnpublishableRecord("t.llm-stream refuses the record")

    with pytest.raises(UnpublishableRecord) as raised:
        await _handler(publisher)(_record())

    assert not isinstance(raised.value, RetryableError)  # the runtime dead-letters it
