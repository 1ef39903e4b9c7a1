"""Kept results in the real Mongo-compatible server: a redelivered request is answered from the
kept result, the provider (the local HTTP server) is called once; retention deletes old ones."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.base import derive_id
from contracts.codec import encode
from contracts.llm import LLMCompleted, LLMFailed
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.openai_provider import (
    OpenAICompatibleProvider,
    OpenAIProviderConfig,
)
from services.llm_invocation.result_store import KeptResults
from services.runtime import Record
from services.runtime.retention import RetentionJob
from tests.support.llm_invocation.fake_ports import RecordingPublisher
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.results_contract import KeptResultsContract, completed
from tests.support.openai_server import FakeOpenAIServer, status, text_stream

pytestmark = pytest.mark.integration

STREAM, RESULTS = "t.llm-stream", "t.llm-results"


@pytest.fixture
async def kept_results(mongodb_uri: str, mongo_database_name: str) -> AsyncIterator[KeptResults]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        results = KeptResults(client[mongo_database_name])
        await results.ensure_indexes()
        await results.ensure_indexes()  # idempotent at every start-up
        yield results
    finally:
        await client.close()


class TestMongoKeptResults(KeptResultsContract):
    """The contract the in-memory fake is held to, against the real store."""

    @pytest.fixture
    def results(self, kept_results: KeptResults) -> KeptResults:
        return kept_results


@pytest.fixture
async def provider(openai_server: FakeOpenAIServer) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(base_url=openai_server.base_url, model="fake-model")
    )
    yield provider
    await provider.aclose()


def _record(message: object, offset: int) -> Record:
    encoded = encode(message, source="agent-orchestration")  # type: ignore[arg-type]
    return Record("t.llm-requests", 3, offset, encoded.key, encoded.value, tuple(encoded.headers))


async def test_a_redelivered_request_is_answered_from_the_kept_result(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, kept_results: KeptResults
) -> None:
    openai_server.script(text_stream("Paid for once.", usage=(30, 4)))
    publisher = RecordingPublisher()
    handler = LLMRequestHandler(
        invoker=Invoker(provider),
        results=kept_results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
    )
    request = llm_request("What is idempotency?")

    await handler(_record(request, offset=7))
    await handler(_record(request, offset=7))  # redelivered: same record, after a crash

    assert openai_server.calls == 1
    first, second = publisher.messages(RESULTS)
    assert isinstance(first, LLMCompleted)
    assert first == second  # same id, same content, same timestamp: a duplicate, deduped by id
    assert first.id == derive_id("llm-result", request.invocation_id)
    assert first.content == "Paid for once."
    assert first.usage.total_tokens == 34
    assert await kept_results.get(request.invocation_id) == first
    # the stream was published once, by the call that paid
    assert "".join(d.delta for d in publisher.messages(STREAM)) == "Paid for once."  # type: ignore[attr-defined]


async def test_a_kept_failure_is_republished_too(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, kept_results: KeptResults
) -> None:
    openai_server.script(status(400, message="context too long"))
    publisher = RecordingPublisher()
    handler = LLMRequestHandler(
        invoker=Invoker(provider),
        results=kept_results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
    )
    request = llm_request(turn_id="turn-failing")
    await handler(_record(request, offset=1))
    await handler(_record(request, offset=1))
    assert openai_server.calls == 1
    first, second = publisher.messages(RESULTS)
    assert isinstance(first, LLMFailed)
    assert first == second


async def test_the_first_kept_result_wins(kept_results: KeptResults) -> None:
    request = llm_request(turn_id="turn-race")
    common = {
        "id": derive_id("llm-result", request.invocation_id),
        "session_id": request.session_id,
        "tenant_id": request.tenant_id,
        "invocation_id": request.invocation_id,
        "turn_id": request.turn_id,
        "step": request.step,
        "agent": request.agent,
        "provider": "p",
        "model": "m",
        "finish_reason": "stop",
    }
    first = LLMCompleted(content="first owner", **common)
    second = LLMCompleted(content="second owner", **common)
    assert await kept_results.keep(first) == first
    assert await kept_results.keep(second) == first  # the racing owner publishes the kept one


async def test_the_keep_is_guarded_by_an_index_on_exactly_its_filter(
    kept_results: KeptResults, mongodb_uri: str, mongo_database_name: str
) -> None:
    # The local server serves a filter from an index only when its keys are the index's: the
    # keep filters on {_id, kept: false}, so (_id, kept) must exist and documents carry `kept`.
    result = completed("turn-indexed")
    owner = "host/1#abc"
    assert await kept_results.claim(result.invocation_id, result.session_id, owner) is not None
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        collection = client[mongo_database_name]["llm_results"]
        claimed = await collection.find_one({"_id": result.invocation_id})
        assert claimed is not None
        assert claimed["kept"] is False
        assert await kept_results.keep(result) == result
        done = await collection.find_one({"_id": result.invocation_id})
        assert done is not None
        assert done["kept"] is True
        assert "claim" not in done
        indexes = await collection.index_information()
        assert indexes["keep_guard"]["key"] == [("_id", 1), ("kept", 1)]
        assert indexes["keep_guard"]["unique"] is True
    finally:
        await client.close()


async def test_a_claim_written_before_the_kept_flag_is_kept_over(
    kept_results: KeptResults, mongodb_uri: str, mongo_database_name: str
) -> None:
    # A rolling upgrade: an older instance claimed without `kept`; this one keeps the result.
    result = completed("turn-older-claim", "kept over an older claim")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        await client[mongo_database_name]["llm_results"].insert_one(
            {
                "_id": result.invocation_id,
                "session_id": result.session_id,
                "claim": {"owner": "older/1#x", "beat": 3},
                "kept_at": datetime.now(UTC),
            }
        )
    finally:
        await client.close()

    assert await kept_results.keep(result) == result
    assert await kept_results.get(result.invocation_id) == result
    assert await kept_results.keep(completed("turn-older-claim", "a later owner")) == result


async def test_retention_deletes_only_results_older_than_the_period(
    kept_results: KeptResults,
) -> None:
    old = llm_request(turn_id="turn-old")
    await kept_results.keep(
        LLMFailed(
            id=derive_id("llm-result", old.invocation_id),
            session_id=old.session_id,
            tenant_id=old.tenant_id,
            invocation_id=old.invocation_id,
            turn_id=old.turn_id,
            step=0,
            agent=old.agent,
            error_class="timeout",
            retryable=True,
        )
    )
    later = datetime.now(UTC) + timedelta(hours=2)
    keep_an_hour = RetentionJob(
        "llm_results",
        kept_results.delete_kept_before,
        retention=timedelta(hours=3),
        interval_s=3600,
        clock=lambda: later,
    )
    assert await keep_an_hour.run_once() == 0
    assert await kept_results.get(old.invocation_id) is not None
    keep_a_minute = RetentionJob(
        "llm_results",
        kept_results.delete_kept_before,
        retention=timedelta(minutes=1),
        interval_s=3600,
        clock=lambda: later,
    )
    assert await keep_a_minute.run_once() == 1
    assert await kept_results.get(old.invocation_id) is None
