"""An erased session's kept answers (Idempotency-Key replays) go with its content: an answer
holds the title, the system prompt, the metadata, the assistant's message, which MongoDB kept
for the retention (24 h) and a replay of the key handed back after the erasure."""

import asyncio
import json
import time

import pytest
from pymongo import AsyncMongoClient

from contracts.commands import EraseSession
from contracts.topics import TopicCatalogue, TopicName
from services.gateway.idempotency import RESPONSES
from tests.integration.gateway.with_session_commands import gateway_over_session_commands
from tests.integration.service_harness import Publisher

pytestmark = pytest.mark.integration

SESSION = "s-erased"
PERSONAL = "Ada's immigration case"


async def test_the_erasure_deletes_the_kept_answers_of_the_session(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    name = f"erased-{unique_suffix}"
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    kept = mongo[mongo_database_name][RESPONSES]
    async with (
        gateway_over_session_commands(
            kafka_bootstrap_servers, mongodb_uri, mongo_database_name, name
        ) as gateway,
        Publisher(kafka_bootstrap_servers) as publisher,
    ):
        keyed = {**gateway.auth, "Idempotency-Key": f"create-{unique_suffix}"}
        body = {"session_id": SESSION, "title": PERSONAL, "system_prompt": PERSONAL}
        created = await gateway.http.post("/v1/sessions", json=body, headers=keyed)
        assert created.status_code == 201, created.text

        async def kept_text() -> str:
            return json.dumps(
                [d async for d in kept.find({"body": {"$regex": SESSION}})], default=str
            )

        assert PERSONAL in await kept_text()
        # Erased by another publisher than this gateway (an operator's CLI): the gateway
        # learns it from session-events.
        await publisher.send(
            TopicCatalogue(prefix=f"{name}.").name(TopicName.COMMANDS),
            EraseSession(id=f"erase-{unique_suffix}", session_id=SESSION, tenant_id="acme"),
        )
        deadline = time.monotonic() + 20
        while PERSONAL in await kept_text():
            assert time.monotonic() < deadline, "the kept answer outlived the erasure"
            await asyncio.sleep(0.1)

        replay = await gateway.http.post("/v1/sessions", json=body, headers=keyed)
        assert PERSONAL not in replay.text, replay.text
    await mongo.close()
