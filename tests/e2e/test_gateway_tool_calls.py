"""Tool calls over HTTP (issue 20): results, approvals and denials through the gateway's
endpoints — idempotent, tenant-scoped, problem+json — and the tool events on the session's SSE
stream. The offline provider calls the tools; the test is the client that runs them."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from contracts.base import Message
from contracts.session_events import (
    AssistantMessageAppended,
    ToolApprovalRequested,
    ToolCallRequested,
    TurnCompleted,
)
from contracts.topics import TopicName
from services.gateway.routes.messages import turn_id_for
from tests.e2e.conftest import Pipeline
from tests.e2e.gateway_process import GatewayProcess, start_gateway
from tests.e2e.sse_client import SseEvent, sse_events
from tests.integration.service_harness import TopicReader

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WITHIN_S = 60.0
SESSION = "s-tools"
TOOL_EVENTS = {
    "tool_call_requested",
    "tool_approval_requested",
    "tool_call_approved",
    "tool_call_denied",
    "tool_result_recorded",
    "tool_round_completed",
}


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(
        tmp_path / "gateway", pipeline.stack.env, ("tenant-a", "tenant-b")
    )
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


def _of_turn(events: TopicReader, turn_id: str, kind: type[Message]) -> list[Message]:
    return [
        m for m in events.messages if isinstance(m, kind) and getattr(m, "turn_id", None) == turn_id
    ]


async def _wait(
    events: TopicReader, turn_id: str, kind: type[Message], count: int = 1
) -> list[Message]:
    await events.wait_for(
        lambda _: len(_of_turn(events, turn_id, kind)) >= count,
        f"{count} {kind.__name__} of {turn_id}",
        within=WITHIN_S,
    )
    return _of_turn(events, turn_id, kind)


async def _answer(events: TopicReader, turn_id: str) -> str:
    await _wait(events, turn_id, TurnCompleted)
    [answer] = _of_turn(events, turn_id, AssistantMessageAppended)
    assert isinstance(answer, AssistantMessageAppended)
    return answer.content


async def test_tool_calls_over_http(pipeline: Pipeline, gateway: GatewayProcess) -> None:
    a, b = gateway.auth("tenant-a"), gateway.auth("tenant-b")
    seen: list[SseEvent] = []
    bootstrap = pipeline.settings.kafka_bootstrap_servers
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=WITHIN_S + 15) as http,
        TopicReader(bootstrap, pipeline.catalogue.name(TopicName.SESSION_EVENTS)) as events,
    ):
        created = await http.post(
            "/v1/sessions", json={"session_id": SESSION, "initial_agent": "coder"}, headers=a
        )
        assert created.status_code == 201, created.text

        async def watch() -> None:
            async with http.stream("GET", f"/v1/sessions/{SESSION}/events", headers=a) as stream:
                async for event in sse_events(stream):
                    seen.append(event)

        watcher = asyncio.create_task(watch())
        try:
            await _results_in_any_order(http, events, a, b)
            await _approved_and_denied(http, events, a)
            await asyncio.sleep(0)  # let the stream catch up before it is checked
            deadline = asyncio.get_running_loop().time() + WITHIN_S
            while {e.event for e in seen} < TOOL_EVENTS:
                assert asyncio.get_running_loop().time() < deadline, {e.event for e in seen}
                await asyncio.sleep(0.1)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    requested = next(e for e in seen if e.event == "tool_call_requested")
    assert requested.data["runs_on"] == "client"
    assert "tenant_id" not in requested.data
    continued = next(e for e in seen if e.event == "tool_round_completed")
    assert "rounds" not in continued.data
    assert "context" not in continued.data


async def _results_in_any_order(
    http: httpx.AsyncClient, events: TopicReader, a: dict[str, str], b: dict[str, str]
) -> None:
    sent = await http.post(
        f"/v1/sessions/{SESSION}/messages",
        json={"content": "read file app.py and lib.py", "message_id": "m1"},
        headers=a,
    )
    assert sent.status_code in (200, 202), sent.text
    turn = turn_id_for(SESSION, "m1")
    first, second = await _wait(events, turn, ToolCallRequested, count=2)
    assert isinstance(first, ToolCallRequested)
    assert isinstance(second, ToolCallRequested)
    calls = f"/v1/sessions/{SESSION}/tool-calls"

    foreign = await http.post(
        f"{calls}/{first.tool_call_id}/result", json={"content": "x"}, headers=b
    )
    assert foreign.status_code == 404
    assert foreign.headers["content-type"].startswith("application/problem+json")
    assert foreign.json()["code"] == "session_not_found"

    unknown = await http.post(f"{calls}/call_unknown/result", json={"content": "x"}, headers=a)
    assert unknown.status_code == 409
    assert unknown.json()["code"] == "tool_call_not_pending"

    too_long = await http.post(
        f"{calls}/{first.tool_call_id}/result", json={"content": "x" * 16_001}, headers=a
    )
    assert too_long.status_code == 422

    keyed = {**a, "Idempotency-Key": "result-2"}
    answered = await http.post(
        f"{calls}/{second.tool_call_id}/result", json={"content": "LIB CONTENT"}, headers=keyed
    )
    assert answered.status_code == 200, answered.text
    replay = await http.post(
        f"{calls}/{second.tool_call_id}/result", json={"content": "LIB CONTENT"}, headers=keyed
    )
    assert (replay.status_code, replay.json()) == (200, answered.json())
    repeat = await http.post(
        f"{calls}/{second.tool_call_id}/result", json={"content": "other"}, headers=a
    )
    assert repeat.status_code == 200  # idempotent by tool call id: changes nothing
    done = await http.post(
        f"{calls}/{first.tool_call_id}/result", json={"content": "APP CONTENT"}, headers=a
    )
    assert done.status_code == 200, done.text
    answer = await _answer(events, turn)
    assert "APP CONTENT" in answer
    assert "LIB CONTENT" in answer
    assert "other" not in answer


async def _approved_and_denied(
    http: httpx.AsyncClient, events: TopicReader, a: dict[str, str]
) -> None:
    calls = f"/v1/sessions/{SESSION}/tool-calls"
    for n, verdict in ((2, "approve"), (3, "deny")):
        sent = await http.post(
            f"/v1/sessions/{SESSION}/messages",
            json={"content": f"write file n{n}.txt with hello", "message_id": f"m{n}"},
            headers=a,
        )
        assert sent.status_code in (200, 202), sent.text
        turn = turn_id_for(SESSION, f"m{n}")
        [ask] = await _wait(events, turn, ToolApprovalRequested)
        assert isinstance(ask, ToolApprovalRequested)
        early = await http.post(
            f"{calls}/{ask.tool_call_id}/result", json={"content": "x"}, headers=a
        )
        assert early.status_code == 409
        body = {"reason": "not here"} if verdict == "deny" else None
        decided = await http.post(f"{calls}/{ask.tool_call_id}/{verdict}", json=body, headers=a)
        assert decided.status_code == 200, decided.text
        again = await http.post(f"{calls}/{ask.tool_call_id}/{verdict}", json=body, headers=a)
        assert again.status_code == 200
        other = "deny" if verdict == "approve" else "approve"
        crossed = await http.post(f"{calls}/{ask.tool_call_id}/{other}", headers=a)
        assert crossed.status_code == 409
        assert crossed.json()["code"] == "tool_call_not_pending"
        if verdict == "approve":
            [call] = await _wait(events, turn, ToolCallRequested)
            assert isinstance(call, ToolCallRequested)
            result = await http.post(
                f"{calls}/{call.tool_call_id}/result", json={"content": "created"}, headers=a
            )
            assert result.status_code == 200, result.text
            assert "created" in await _answer(events, turn)
        else:
            assert "denied: not here" in await _answer(events, turn)
