"""Stopping a turn over HTTP (issue 17's gateway endpoint): a slow provider streams, the client
presses stop, the turn ends `cancelled` with the text streamed so far, the next message runs."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from contracts.topics import TopicName
from services.gateway.routes.messages import turn_id_for
from tests.e2e.conftest import Pipeline
from tests.e2e.gateway_process import GatewayProcess, start_gateway
from tests.e2e.test_cancel_turn import WITHIN_S, _streaming, slow_stream
from tests.integration.service_harness import TopicReader
from tests.support.openai_server import FakeOpenAIServer, text_stream

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def provider() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer.in_thread(default=text_stream("The second answer.")) as server:
        server.script(slow_stream())
        yield server


@pytest.fixture
def pipeline_env(provider: FakeOpenAIServer) -> dict[str, str]:
    return {"LLM_BASE_URL": provider.base_url, "LLM_API_KEY": "sk-test", "LLM_MODEL": "fake"}


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(tmp_path / "gateway", pipeline.stack.env, ("tenant-a",))
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


async def test_stop_button_over_http(
    pipeline: Pipeline, gateway: GatewayProcess, provider: FakeOpenAIServer
) -> None:
    a = gateway.auth("tenant-a")
    bootstrap = pipeline.settings.kafka_bootstrap_servers
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=WITHIN_S + 15) as http,
        TopicReader(bootstrap, pipeline.catalogue.name(TopicName.LLM_STREAM)) as stream,
    ):
        created = await http.post(
            "/v1/sessions",
            json={"session_id": "s-stop", "initial_agent": "ask", "mid_turn_policy": "queue"},
            headers=a,
        )
        assert created.status_code == 201, created.text
        assert created.json()["mid_turn_policy"] == "queue"

        idle = await http.post("/v1/sessions/s-stop/turns/cancel", headers=a)
        assert idle.status_code == 409
        assert idle.json()["code"] == "turn_not_running"

        # The first answer streams for a minute; its waiting request is answered by the stop.
        first = asyncio.create_task(
            http.post(
                "/v1/sessions/s-stop/messages",
                json={"content": "Tell me everything.", "message_id": "m1"},
                headers={**a, "Prefer": f"wait={WITHIN_S:.0f}"},
            )
        )
        turn = turn_id_for("s-stop", "m1")  # known up front, as the receipt says
        await _streaming(stream, turn)

        stopped = await http.post(
            "/v1/sessions/s-stop/turns/cancel",
            json={"reason": "wrong question"},
            headers={**a, "Idempotency-Key": "stop-1"},
        )
        assert stopped.status_code == 200, stopped.text
        again = await http.post(
            "/v1/sessions/s-stop/turns/cancel",
            json={"reason": "wrong question"},
            headers={**a, "Idempotency-Key": "stop-1"},
        )
        assert again.json() == stopped.json()  # a retried stop is the same stop

        answered = await first
        assert answered.status_code == 200, answered.text
        receipt = answered.json()
        assert receipt["status"] == "cancelled"
        partial = receipt["answer"]
        assert partial is not None
        assert partial["interrupted"] is True
        assert len(partial["content"]) > 0

        late = await http.post("/v1/sessions/s-stop/turns/cancel", headers=a)
        assert late.status_code == 409
        assert late.headers["content-type"].startswith("application/problem+json")
        assert late.json()["code"] == "turn_not_running"

        second = await http.post(
            "/v1/sessions/s-stop/messages",
            json={"content": "Then just the summary."},
            headers={**a, "Prefer": f"wait={WITHIN_S:.0f}"},
        )
        assert second.status_code == 200, second.text
        assert second.json()["status"] == "completed"
        assert second.json()["answer"]["content"] == "The second answer."

        shown = (await http.get("/v1/sessions/s-stop/messages", headers=a)).json()["messages"]
        assert [(m["role"], m["interrupted"]) for m in shown] == [
            ("user", False),
            ("assistant", True),
            ("user", False),
            ("assistant", False),
        ]
    assert provider.calls == 2
