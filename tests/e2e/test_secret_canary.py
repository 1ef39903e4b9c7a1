"""The LLM API key never leaks (issue 16): a provider answers 401 quoting the key it was sent,
as OpenAI and many proxies do; the turn fails, and the key appears on no topic, in no
collection and in no service log — while the failure itself still reaches the client."""

import asyncio
import json
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from contracts.commands import CreateSession, SubmitUserMessage
from contracts.session_events import TurnFailed
from contracts.topics import TopicName
from tests.e2e.conftest import Pipeline
from tests.integration.service_harness import Publisher, TopicReader, eventually
from tests.support.openai_server import FakeOpenAIServer, status

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CANARY = "sk-proj-CanaryKey7f3e9a1c5b2d4e6f8a0b"
WITHIN_S = 90.0


@pytest.fixture
def provider() -> Iterator[FakeOpenAIServer]:
    body = (
        f"Incorrect API key provided: {CANARY}. You can find your API key at "
        f"https://platform.openai.com/account/api-keys. (Authorization: Bearer {CANARY})"
    )
    with FakeOpenAIServer.in_thread(default=status(401, message=body)) as server:
        yield server


@pytest.fixture
def pipeline_env(provider: FakeOpenAIServer) -> dict[str, str]:
    return {"LLM_BASE_URL": provider.base_url, "LLM_API_KEY": CANARY, "LLM_MODEL": "fake-model"}


async def test_a_key_quoted_by_the_provider_reaches_no_topic_collection_or_log(
    pipeline: Pipeline, provider: FakeOpenAIServer
) -> None:
    settings, catalogue = pipeline.settings, pipeline.catalogue
    session, tenant = "canary-1", settings.tenant_id
    commands = catalogue.name(TopicName.COMMANDS)
    async with (
        Publisher(settings.kafka_bootstrap_servers) as publisher,
        TopicReader(
            settings.kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)
        ) as events,
    ):
        await publisher.send(
            commands,
            CreateSession(id="canary-create", session_id=session, tenant_id=tenant),
            SubmitUserMessage(
                id="canary-submit",
                session_id=session,
                tenant_id=tenant,
                message_id="canary-m1",
                content="hello?",
            ),
        )
        await events.wait_for(
            lambda _: bool(events.of_type(TurnFailed)), "the turn failed", within=WITHIN_S
        )
    [failed] = events.of_type(TurnFailed)
    assert failed.error_class == "auth_error"
    assert "Incorrect API key provided: [REDACTED:api_key]" in failed.reason
    assert provider.requests[0].headers["authorization"] == f"Bearer {CANARY}"

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        database = client[settings.mongodb_database]

        async def turn_failure_audited() -> bool:
            found = await database["audit_log"].find_one(
                {"session_id": session, "fact_type": "turn.failed.v1"}
            )
            return found is not None

        await eventually(turn_failure_audited, WITHIN_S, "the failed turn in the audit log")
        for name in await database.list_collection_names():
            async for document in database[name].find({}):
                assert CANARY not in json.dumps(document, default=str), f"collection {name}"
    finally:
        await client.close()

    for spec in catalogue.specs():
        found = await records_containing(
            settings.kafka_bootstrap_servers, spec.name, spec.partitions
        )
        for where in found:
            raise AssertionError(f"the key is on {where}")
    for name in pipeline.stack.services:
        log = pipeline.stack.log_path(name).read_text(errors="replace")
        assert CANARY not in log, f"the key is in {name}'s log"


async def records_containing(bootstrap: str, topic: str, partition_count: int) -> list[str]:
    """Where on `topic` (every partition, from the start to the end now) the canary appears:
    key, value or any header."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        found: list[str] = []
        canary = CANARY.encode()
        while remaining:
            batches = await asyncio.wait_for(consumer.getmany(*remaining, timeout_ms=1000), 30)
            for tp, records in batches.items():
                for r in records:
                    parts = [r.key or b"", r.value or b"", *(v or b"" for _, v in r.headers)]
                    if any(canary in part for part in parts):
                        found.append(f"{topic}[{tp.partition}]@{r.offset}")
                    if r.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return found
    finally:
        await consumer.stop()
