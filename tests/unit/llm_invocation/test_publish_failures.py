"""llm-invocation's decision on publish failures (docs/llm-invocation.md, "Failures while
publishing"): it classifies nothing itself. A broker outage, as `ServiceRuntime.publish` raises
it, retries the record; a record the broker refuses is permanent, never retried forever."""

import pytest

from contracts.codec import encode
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.offline_provider import OfflineProvider
from services.runtime import Record, RetryableError, UnpublishableRecord
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
    )


def _record() -> Record:
    encoded = encode(llm_request(), source="agent-orchestration")
    return Record("t.llm-requests", 0, 0, encoded.key, encoded.value, tuple(encoded.headers))


async def test_a_broker_outage_while_publishing_retries_the_record() -> None:
    publisher = RecordingPublisher()
    publisher.fail_with = RetryableError("broker unavailable for t.llm-stream")

    with pytest.raises(RetryableError):
        await _handler(publisher)(_record())


async def test_a_record_the_broker_refuses_is_not_retried() -> None:
    publisher = RecordingPublisher()
    publisher.fail_with = UnpublishableRecord("t.llm-stream refuses the record")

    with pytest.raises(UnpublishableRecord) as raised:
        await _handler(publisher)(_record())

    assert not isinstance(raised.value, RetryableError)  # the runtime dead-letters it
