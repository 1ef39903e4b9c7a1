"""Claims in the real Mongo-compatible server: one owner per invocation, a renewed lease that a
second owner waits on, a lapsed lease taken over, and the provider paid once when two owners
run the same request (a rebalance whose drain timed out)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.base import derive_id
from contracts.codec import encode
from contracts.llm import LLMCompleted
from services.llm_invocation.claims import InvocationClaims
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.openai_provider import (
    OpenAICompatibleProvider,
    OpenAIProviderConfig,
)
from services.llm_invocation.result_store import Holder, KeptResults
from services.runtime import Record
from tests.support.llm_invocation.fake_ports import RecordingPublisher
from tests.support.llm_invocation.requests import llm_request
from tests.support.openai_server import FakeOpenAIServer, text_stream

pytestmark = pytest.mark.integration

STREAM, RESULTS = "t.llm-stream", "t.llm-results"


async def _store(mongodb_uri: str, database: str) -> tuple[KeptResults, AsyncMongoClient[Any]]:
    """One client per simulated instance: each has its own connection pool, as two pods do."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    results = KeptResults(client[database])
    await results.ensure_indexes()
    return results, client


@pytest.fixture
async def two_instances(
    mongodb_uri: str, mongo_database_name: str
) -> AsyncIterator[tuple[KeptResults, KeptResults]]:
    first, first_client = await _store(mongodb_uri, mongo_database_name)
    second, second_client = await _store(mongodb_uri, mongo_database_name)
    try:
        yield first, second
    finally:
        await first_client.close()
        await second_client.close()


def _completed(invocation_id: str, content: str) -> LLMCompleted:
    request = llm_request()
    return LLMCompleted(
        id=derive_id("llm-result", invocation_id),
        session_id=request.session_id,
        tenant_id=request.tenant_id,
        invocation_id=invocation_id,
        turn_id=request.turn_id,
        step=0,
        agent=request.agent,
        content=content,
        provider="p",
        model="m",
        finish_reason="stop",
    )


async def test_one_owner_per_invocation_and_the_lease_moves_only_when_seen_unchanged(
    two_instances: tuple[KeptResults, KeptResults], unique_suffix: str
) -> None:
    a, b = two_instances
    invocation = f"inv-{unique_suffix}"
    assert await a.claim(invocation, "s", "A") == Holder("A")
    assert await b.claim(invocation, "s", "B") == Holder("A")  # held: B must wait
    assert await a.renew(invocation, "A")
    assert await b.read_claim(invocation) == Holder("A", 1)
    assert not await b.take_over(invocation, "B", Holder("A", 0))  # A renewed since
    assert await b.take_over(invocation, "B", Holder("A", 1))
    assert not await a.renew(invocation, "A")  # A learns it lost the claim
    # A's call finished anyway: its result is kept (first result wins), B's is not.
    first = _completed(invocation, "from A")
    assert await a.keep(first) == first
    assert await b.keep(_completed(invocation, "from B")) == first
    assert await b.claim(invocation, "s", "C") == first  # later owners replay it
    assert not await b.renew(invocation, "B")


async def test_a_released_claim_is_claimed_at_once_by_the_next_owner(
    two_instances: tuple[KeptResults, KeptResults], unique_suffix: str
) -> None:
    a, b = two_instances
    invocation = f"inv-rel-{unique_suffix}"
    assert await a.claim(invocation, "s", "A") == Holder("A")
    await b.release(invocation, "B")  # not B's: nothing happens
    assert await b.claim(invocation, "s", "B") == Holder("A")
    await a.release(invocation, "A")
    assert await b.read_claim(invocation) is None
    assert await b.claim(invocation, "s", "B") == Holder("B")
    assert await a.get(invocation) is None


async def test_concurrent_claims_make_exactly_one_owner(
    two_instances: tuple[KeptResults, KeptResults], unique_suffix: str
) -> None:
    a, b = two_instances
    invocation = f"inv-race-{unique_suffix}"
    owners = [f"owner-{i}" for i in range(24)]
    states = await asyncio.gather(
        *((a if i % 2 else b).claim(invocation, "s", owner) for i, owner in enumerate(owners))
    )
    winners = [o for o, s in zip(owners, states, strict=True) if s == Holder(o)]
    assert len(winners) == 1
    assert set(states) == {Holder(winners[0])}
    takeovers = await asyncio.gather(
        *(a.take_over(invocation, o, Holder(winners[0])) for o in owners if o != winners[0])
    )
    assert sum(takeovers) == 1  # the conditional update is atomic too


def _record(message: object) -> Record:
    encoded = encode(message, source="agent-orchestration")  # type: ignore[arg-type]
    return Record("t.llm-requests", 0, 5, encoded.key, encoded.value, tuple(encoded.headers))


def _handler(
    results: KeptResults, provider: OpenAICompatibleProvider, publisher: RecordingPublisher
) -> LLMRequestHandler:
    return LLMRequestHandler(
        invoker=Invoker(provider),
        results=results,
        publish=publisher,
        stream_topic=STREAM,
        results_topic=RESULTS,
        claims=InvocationClaims(results, lease_s=1.0),
    )


@pytest.fixture
async def provider(openai_server: FakeOpenAIServer) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(base_url=openai_server.base_url, model="fake-model")
    )
    yield provider
    await provider.aclose()


async def test_a_second_owner_waits_for_a_call_longer_than_the_lease_and_pays_nothing(
    openai_server: FakeOpenAIServer,
    provider: OpenAICompatibleProvider,
    two_instances: tuple[KeptResults, KeptResults],
) -> None:
    # A call of ~3.5 s, three and a half leases: only renewals keep the second owner waiting.
    openai_server.script(text_stream("A long answer, paid once.", chunk_delay_s=0.5))
    old_owner, new_owner = RecordingPublisher(), RecordingPublisher()
    a, b = two_instances
    request = llm_request(turn_id="turn-rebalanced")
    first = asyncio.create_task(_handler(a, provider, old_owner)(_record(request)))
    await openai_server.wait_for(lambda s: s.calls == 1)
    second = asyncio.create_task(_handler(b, provider, new_owner)(_record(request)))
    await asyncio.wait_for(asyncio.gather(first, second), 20)
    assert openai_server.calls == 1
    (paid,) = old_owner.messages(RESULTS)
    (replayed,) = new_owner.messages(RESULTS)
    assert paid == replayed
    assert isinstance(paid, LLMCompleted)
    assert paid.content == "A long answer, paid once."
    assert new_owner.messages(STREAM) == []  # the text was streamed by the owner that paid


async def test_a_lapsed_lease_is_taken_over_and_the_call_made_once_more(
    openai_server: FakeOpenAIServer,
    provider: OpenAICompatibleProvider,
    two_instances: tuple[KeptResults, KeptResults],
) -> None:
    openai_server.script(text_stream("After a crash."))
    a, b = two_instances
    request = llm_request(turn_id="turn-crashed")
    # The owner crashed mid-stream (kill -9): its claim stays, never renewed again.
    assert await a.claim(request.invocation_id, request.session_id, "crashed#1") == Holder(
        "crashed#1"
    )
    publisher = RecordingPublisher()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(_handler(b, provider, publisher)(_record(request)), 20)
    assert loop.time() - started >= 1.0  # waited for the lease first
    assert openai_server.calls == 1
    (result,) = publisher.messages(RESULTS)
    assert await a.get(request.invocation_id) == result
