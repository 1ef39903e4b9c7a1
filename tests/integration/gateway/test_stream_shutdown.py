"""A gateway process that stops (SIGTERM) ends its live streams at once, each with a whole
body, instead of holding the shutdown for the drain timeout and then cutting them mid-body."""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from contracts.topics import TopicCatalogue
from services.admin.topics import delete_topics, ensure_topics
from services.cli.stack import GATEWAY
from tests.e2e.gateway_process import GatewayProcess, start_gateway
from tests.e2e.sse_client import sse_events

pytestmark = pytest.mark.integration

DRAIN_TIMEOUT_S = 30.0


@pytest.fixture
async def gateway(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
) -> AsyncIterator[GatewayProcess]:
    catalogue = TopicCatalogue(prefix=f"shutdown-{unique_suffix}.")
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_MONGODB_URI": mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": mongo_database_name,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        "AGENT_RUNTIME_LOG_FORMAT": "json",
        "AGENT_RUNTIME_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S),
    }
    process = await start_gateway(tmp_path / "gateway", env, ("tenant-a",))
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=DRAIN_TIMEOUT_S + 10)
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def test_a_stopping_gateway_ends_its_streams_at_once(
    gateway: GatewayProcess, mongodb_uri: str, mongo_database_name: str
) -> None:
    # The stream's tenant check reads the session's id and tenant only.
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        await mongo[mongo_database_name]["sessions"].insert_one(
            {"_id": "s-shutdown", "tenant_id": "tenant-a"}
        )
    finally:
        await mongo.close()
    pid = gateway.stack.pid(GATEWAY.name)
    assert pid is not None
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=DRAIN_TIMEOUT_S + 10) as http,
        http.stream(
            "GET", "/v1/sessions/s-shutdown/events", headers=gateway.auth("tenant-a")
        ) as response,
    ):
        assert response.status_code == 200, await response.aread()
        events = sse_events(response)
        first = await anext(events)
        assert first.event == "stream_started"
        assert first.id is not None
        os.kill(pid, signal.SIGTERM)
        stopping = time.monotonic()
        # A whole body, no last event (httpx raises on a body cut mid-chunk): EventSource
        # reconnects with the id it has, to a replica that runs.
        assert [event async for event in events] == []
        ended_after_s = time.monotonic() - stopping
    assert ended_after_s < DRAIN_TIMEOUT_S / 3, ended_after_s
    # The process is this test's child (ServiceStack started it): wait for its exit.
    await asyncio.wait_for(asyncio.to_thread(os.waitpid, pid, 0), DRAIN_TIMEOUT_S / 3)
    log = gateway.stack.log_path(GATEWAY.name).read_text(errors="replace")
    assert "Exception in ASGI application" not in log
    assert "timeout graceful shutdown exceeded" not in log
