"""A whole conversation through HTTP only, against the four services and the real broker."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Pipeline
from tests.e2e.gateway_process import GatewayProcess, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROBLEM = "application/problem+json"


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(
        tmp_path / "gateway",
        pipeline.stack.env,
        ("tenant-a", "tenant-b"),
        # Enough for the whole test, so that only the dedicated rate-limit test sees 429.
        {"AGENT_RUNTIME_GATEWAY_RATE_LIMIT_BURST": "1000"},
    )
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


async def test_conversation_over_http(gateway: GatewayProcess) -> None:
    a = gateway.auth("tenant-a")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90.0) as http:
        created = await http.post(
            "/v1/sessions",
            json={"session_id": "s-http-1", "title": "Importer", "system_prompt": "Be brief."},
            headers={**a, "Idempotency-Key": "create-1"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["location"] == "/v1/sessions/s-http-1"
        assert created.json()["status"] == "active"

        # The same POST again: the first answer, and no second session.
        again = await http.post(
            "/v1/sessions",
            json={"session_id": "s-http-1", "title": "Importer", "system_prompt": "Be brief."},
            headers={**a, "Idempotency-Key": "create-1"},
        )
        assert (again.status_code, again.json()) == (201, created.json())

        sent = await http.post(
            "/v1/sessions/s-http-1/messages",
            json={"content": "The importer crashes with a KeyError traceback, why?"},
            headers={
                **a,
                "Prefer": "wait=60",
                "Idempotency-Key": "msg-1",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            },
        )
        assert sent.status_code == 200, sent.text
        receipt = sent.json()
        assert receipt["status"] == "completed"
        assert receipt["seq"] == 1
        assert receipt["answer"]["role"] == "assistant"
        assert receipt["answer"]["turn_id"] == receipt["turn_id"]
        assert sent.headers["x-request-id"]

        retried = await http.post(
            "/v1/sessions/s-http-1/messages",
            json={"content": "The importer crashes with a KeyError traceback, why?"},
            headers={**a, "Prefer": "wait=60", "Idempotency-Key": "msg-1"},
        )
        assert (retried.status_code, retried.json()) == (200, receipt)

        reused = await http.post(
            "/v1/sessions/s-http-1/messages",
            json={"content": "a different message under the same key"},
            headers={**a, "Idempotency-Key": "msg-1"},
        )
        assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")

        history = (await http.get("/v1/sessions/s-http-1/messages", headers=a)).json()
        assert [m["seq"] for m in history["messages"]] == [1, 2]  # retried: still one message
        assert history["messages"][1]["content"] == receipt["answer"]["content"]
        newest = (
            await http.get("/v1/sessions/s-http-1/messages?order=desc&limit=1", headers=a)
        ).json()
        assert [m["seq"] for m in newest["messages"]] == [2]
        assert newest["next_cursor"] == 2
        older = await http.get(
            f"/v1/sessions/s-http-1/messages?order=desc&limit=1&cursor={newest['next_cursor']}",
            headers=a,
        )
        assert [m["seq"] for m in older.json()["messages"]] == [1]
        assert older.json()["next_cursor"] is None

        agents = (await http.get("/v1/agents", headers=a)).json()["agents"]
        assert {agent["name"] for agent in agents} == {
            "orchestrator",
            "coder",
            "architect",
            "debug",
            "ask",
        }

        before = (await http.get("/v1/sessions/s-http-1/agent", headers=a)).json()
        switched = await http.post(
            "/v1/sessions/s-http-1/agent",
            json={"agent": "architect", "reason": "design"},
            headers=a,
        )
        assert switched.status_code == 200, switched.text
        assert switched.json()["current_agent"] == "architect"
        assert switched.json()["switch_count"] == before["switch_count"] + 1
        assert switched.json()["switches_left"] == 10 - switched.json()["switch_count"]
        again = await http.post(
            "/v1/sessions/s-http-1/agent", json={"agent": "architect"}, headers=a
        )
        assert again.status_code == 200, again.text  # the current agent: nothing changes
        assert again.json()["switch_count"] == switched.json()["switch_count"]

        listing = (await http.get("/v1/sessions?status=active", headers=a)).json()
        assert [s["session_id"] for s in listing["sessions"]] == ["s-http-1"]

        closed = await http.post("/v1/sessions/s-http-1/close", json={"reason": "done"}, headers=a)
        assert closed.status_code == 200, closed.text
        assert closed.json()["status"] == "closed"

        refused = await http.post(
            "/v1/sessions/s-http-1/messages", json={"content": "one more?"}, headers=a
        )
        assert refused.status_code == 409
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["code"] == "session_closed"
        assert refused.json()["type"].endswith("/session_closed")
        same_agent = await http.post(
            "/v1/sessions/s-http-1/agent", json={"agent": "architect"}, headers=a
        )
        assert same_agent.status_code == 409, same_agent.text  # as any switch on a closed one
        assert same_agent.json()["code"] == "session_closed"

        await _tenant_b_sees_nothing(http, gateway)


async def _tenant_b_sees_nothing(http: httpx.AsyncClient, gateway: GatewayProcess) -> None:
    """Every endpoint answers tenant B on A's session exactly as on a session that is missing."""
    b = gateway.auth("tenant-b")
    calls = [
        ("GET", "/v1/sessions/{id}", None),
        ("GET", "/v1/sessions/{id}/messages", None),
        ("GET", "/v1/sessions/{id}/agent", None),
        ("PATCH", "/v1/sessions/{id}", {"title": "mine now"}),
        ("POST", "/v1/sessions/{id}/close", {}),
        ("POST", "/v1/sessions/{id}/reopen", None),
        ("POST", "/v1/sessions/{id}/messages", {"content": "hello"}),
        ("POST", "/v1/sessions/{id}/agent", {"agent": "coder"}),
    ]

    def shape(response: httpx.Response) -> tuple[int, str, str, str]:
        body = response.json()
        return response.status_code, response.headers["content-type"], body["code"], body["detail"]

    for method, template, body in calls:
        theirs, missing = await asyncio.gather(
            http.request(method, template.format(id="s-http-1"), json=body, headers=b),
            http.request(method, template.format(id="s-missing-1"), json=body, headers=b),
        )
        assert (
            shape(theirs)
            == shape(missing)
            == (404, PROBLEM, "session_not_found", "no such session")
        ), (method, template, theirs.text, missing.text)
    listing = (await http.get("/v1/sessions", headers=b)).json()
    assert listing["sessions"] == []
    assert listing["total"] == 0
