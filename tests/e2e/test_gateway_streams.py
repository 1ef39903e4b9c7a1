"""Live streams over HTTP (SSE) against the four services: a turn with a hand-off streamed
whole, a resume after k deltas, the original's `POST /v1/messages/stream`, tenants, and 200
concurrent streams."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.gateway.routes.messages import turn_id_for
from tests.e2e.conftest import Pipeline
from tests.e2e.gateway_process import GatewayProcess, start_gateway
from tests.e2e.sse_client import SseEvent, sse_events

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HANDOFF_QUESTION = "The importer crashes with a KeyError traceback, why?"


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    # The offline provider's chunks paced like a model's, so a turn has many deltas
    # (without a pause, llm-invocation coalesces them into a couple of records).
    return {"AGENT_RUNTIME_OFFLINE_CHUNK_DELAY_S": "0.03"}


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(
        tmp_path / "gateway",
        pipeline.stack.env,
        ("tenant-a", "tenant-b"),
        {
            "AGENT_RUNTIME_GATEWAY_RATE_LIMIT_BURST": "5000",
            "AGENT_RUNTIME_GATEWAY_RATE_LIMIT_PER_MINUTE": "60000",
        },
    )
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


async def create_session(http: httpx.AsyncClient, auth: dict[str, str], session_id: str) -> None:
    created = await http.post("/v1/sessions", json={"session_id": session_id}, headers=auth)
    assert created.status_code == 201, created.text


async def read_turn(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    session_id: str,
    *,
    after: str | None = None,
    ready: asyncio.Event | None = None,
    stop_after_tokens: int | None = None,
) -> list[SseEvent]:
    """Events of the session's stream until a turn ends (or `stop_after_tokens` deltas)."""
    headers = {**auth, **({"Last-Event-ID": after} if after else {})}
    seen: list[SseEvent] = []
    async with http.stream("GET", f"/v1/sessions/{session_id}/events", headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for event in sse_events(r):
            seen.append(event)
            if event.event == "stream_started" and ready is not None:
                ready.set()
            tokens = [e for e in seen if e.event == "token"]
            if stop_after_tokens is not None and len(tokens) == stop_after_tokens:
                return seen
            if event.event in ("turn_completed", "turn_failed"):
                return seen
    raise AssertionError(f"stream ended early: {[e.event for e in seen]}")


def check_tokens(events: list[SseEvent]) -> str:
    """Each invocation's deltas once, seq 0..n in order; the answering one's text."""
    by_invocation: dict[str, list[SseEvent]] = defaultdict(list)
    for event in events:
        if event.event == "token":
            by_invocation[event.data["invocation_id"]].append(event)
    for deltas in by_invocation.values():
        assert [d.data["seq"] for d in deltas] == list(range(len(deltas)))
    answer = next(e for e in events if e.event == "assistant_message")
    last = list(by_invocation.values())[-1]
    text = "".join(d.data["delta"] for d in last)
    assert text == answer.data["content"]
    return text


async def test_a_turn_with_handoff_streams_whole_and_resumes_exactly(
    gateway: GatewayProcess,
) -> None:
    a, b = gateway.auth("tenant-a"), gateway.auth("tenant-b")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90.0) as http:
        await create_session(http, a, "s-stream-1")

        # Another tenant's session: the missing-session 404 before any byte.
        foreign = await http.get("/v1/sessions/s-stream-1/events", headers=b)
        missing = await http.get("/v1/sessions/s-nope/events", headers=b)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.headers["content-type"] == "application/problem+json"
        assert foreign.json()["detail"] == missing.json()["detail"]

        # Two clients: one whole, one that leaves after k deltas.
        whole_ready, part_ready = asyncio.Event(), asyncio.Event()
        whole = asyncio.create_task(read_turn(http, a, "s-stream-1", ready=whole_ready))
        k = 3
        part = asyncio.create_task(
            read_turn(http, a, "s-stream-1", ready=part_ready, stop_after_tokens=k)
        )
        await asyncio.wait_for(asyncio.gather(whole_ready.wait(), part_ready.wait()), 30)
        sent = await http.post(
            "/v1/sessions/s-stream-1/messages",
            json={"content": HANDOFF_QUESTION},
            headers={**a, "Prefer": "wait=60"},
        )
        assert sent.status_code == 200, sent.text
        events = await asyncio.wait_for(whole, 60)
        names = [e.event for e in events]
        assert names[0] == "stream_started"
        for expected in ("message_accepted", "turn_started", "agent_switched", "token"):
            assert expected in names, names
        assert names[-2:] == ["assistant_message", "turn_completed"], names
        text = check_tokens(events)
        stored = sent.json()["answer"]["content"]
        assert text == stored
        ids = [e.id for e in events]
        assert len(set(ids)) == len(ids)  # every event its own resume point

        # Resume after the k-th delta: exactly the rest, nothing twice.
        first_part = await asyncio.wait_for(part, 60)
        assert [e.event for e in first_part].count("token") == k
        assert names.count("token") > k + 3, names  # it left mid-answer
        rest = await read_turn(http, a, "s-stream-1", after=first_part[-1].id)
        assert rest[0].event == "stream_started"
        assert rest[0].data["resumed"] is True
        assert [e.data for e in first_part[1:] + rest[1:]] == [e.data for e in events[1:]]

        # The original's endpoint: submit and stream until this turn ends.
        async with http.stream(
            "POST",
            "/v1/messages/stream",
            json={"session_id": "s-stream-1", "content": "Thanks. Any other idea?"},
            headers=a,
        ) as r:
            assert r.status_code == 200
            turn_id = r.headers["x-turn-id"]
            streamed = [event async for event in sse_events(r)]
        assert streamed[-1].event == "turn_completed"
        assert streamed[-1].data["turn_id"] == turn_id
        assert any(e.event == "message_accepted" for e in streamed)
        history = await http.get("/v1/sessions/s-stream-1/messages", headers=a)
        assert history.json()["messages"][-1]["content"] == check_tokens(streamed)

        # A refusal is its problem, before any byte.
        await http.post("/v1/sessions/s-stream-1/close", json={}, headers=a)
        refused = await http.post(
            "/v1/messages/stream", json={"session_id": "s-stream-1", "content": "hi"}, headers=a
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "session_closed")
        bad = await http.get("/v1/sessions/s-stream-1/events?after=v1.0.0.0x", headers=a)
        assert bad.status_code == 422


async def test_200_concurrent_streams_on_200_sessions(gateway: GatewayProcess) -> None:
    a = gateway.auth("tenant-a")
    count = 200
    limits = httpx.Limits(max_connections=count + 20)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=180.0, limits=limits) as http:
        sessions = [f"s-many-{i}" for i in range(count)]
        for start in range(0, count, 20):
            await asyncio.gather(
                *(create_session(http, a, s) for s in sessions[start : start + 20])
            )
        readies = [asyncio.Event() for _ in sessions]
        readers = [
            asyncio.create_task(read_turn(http, a, s, ready=ready))
            for s, ready in zip(sessions, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        for start in range(0, count, 20):
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"/v1/sessions/{s}/messages",
                        json={"content": f"Say hello to reader {s}."},
                        headers={**a, "Prefer": "respond-async"},
                    )
                    for s in sessions[start : start + 20]
                )
            )
            assert all(answer.status_code == 202 for answer in answers)
        streams = await asyncio.wait_for(asyncio.gather(*readers), 240)
        complete = 0
        for events in streams:
            check_tokens(events)
            complete += events[-1].event == "turn_completed"
        assert complete == count


# Offline, this asks the coder for `write_file`, which needs approval in the default
# catalogue: the turn waits for `…/approve` as long as the test needs it to run.
HELD_TURN = "write file notes.txt with hello"


async def hold_a_turn(http: httpx.AsyncClient, auth: dict[str, str], session_id: str) -> None:
    """A new session whose running turn waits for an approval (HELD_TURN)."""
    await create_session(http, auth, session_id)
    async with http.stream("GET", f"/v1/sessions/{session_id}/events", headers=auth) as events:
        held = await http.post(
            f"/v1/sessions/{session_id}/messages", json={"content": HELD_TURN}, headers=auth
        )
        assert held.status_code == 202, held.text
        async for event in sse_events(events):
            if event.event == "tool_approval_requested":
                return
    raise AssertionError(f"the stream of {session_id} ended before the turn asked for approval")


async def until_queued(http: httpx.AsyncClient, auth: dict[str, str], session_id: str) -> None:
    """Until a message waits behind the held turn (within 10 s)."""
    for _ in range(100):
        session = await http.get(f"/v1/sessions/{session_id}", headers=auth)
        if session.json()["queued_messages"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message queued in {session_id}")


async def stream_queued_message(
    http: httpx.AsyncClient, auth: dict[str, str], session_id: str, message_id: str
) -> tuple[str, list[SseEvent]]:
    """`POST /v1/messages/stream` of a message queued behind the held turn: its turn id and
    every event until the stream ends (a stream that never ends fails the test's timeout)."""
    async with http.stream(
        "POST",
        "/v1/messages/stream",
        json={"session_id": session_id, "content": "and then?", "message_id": message_id},
        headers=auth,
    ) as r:
        assert r.status_code == 200, await r.aread()
        return r.headers["x-turn-id"], [event async for event in sse_events(r)]


async def test_the_message_stream_ends_when_its_queued_turn_can_never_run(
    gateway: GatewayProcess,
) -> None:
    """A queued message's turn that is cancelled never starts (no `turn_stopped` follows its
    `turn_cancelled`), and an erased session runs no queued turn: the stream ends there."""
    a = gateway.auth("tenant-a")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90.0) as http:
        for session_id in ("s-queued-cancel", "s-queued-erase"):
            await hold_a_turn(http, a, session_id)

        queued = asyncio.create_task(
            stream_queued_message(http, a, "s-queued-cancel", "m-queued-cancel")
        )
        # The queued turn is cancelled once its message is accepted (the cancel names it).
        for _ in range(100):
            cancel = await http.post(
                "/v1/sessions/s-queued-cancel/turns/cancel",
                json={"turn_id": turn_id_for("s-queued-cancel", "m-queued-cancel")},
                headers=a,
            )
            if cancel.status_code == 200:
                break
            assert cancel.json()["code"] == "turn_not_running", cancel.text
            await asyncio.sleep(0.1)
        turn_id, streamed = await asyncio.wait_for(queued, 30)
        assert streamed[-1].event == "turn_cancelled", [e.event for e in streamed]
        assert streamed[-1].data["turn_id"] == turn_id
        assert streamed[-1].data["queued"] is True

        queued = asyncio.create_task(
            stream_queued_message(http, a, "s-queued-erase", "m-queued-erase")
        )
        await until_queued(http, a, "s-queued-erase")
        erased = await http.post("/v1/sessions/s-queued-erase/erase", json={}, headers=a)
        assert erased.status_code == 200, erased.text
        _, streamed = await asyncio.wait_for(queued, 30)
        assert streamed[-1].event == "session_erased", [e.event for e in streamed]


async def test_a_queued_message_waited_for_answers_failed_when_its_session_is_closed(
    gateway: GatewayProcess,
) -> None:
    """`Prefer: wait` on a message queued behind the running turn: closing the session drops
    the queue with no event of the message's own; the wait ends there, `failed`
    `session_closed`, instead of waiting out its N seconds for a 202."""
    a = gateway.auth("tenant-a")
    session_id = "s-queued-wait-close"
    async with httpx.AsyncClient(base_url=gateway.url, timeout=90.0) as http:
        await hold_a_turn(http, a, session_id)
        waiting = asyncio.create_task(
            http.post(
                f"/v1/sessions/{session_id}/messages",
                json={"content": "and then?"},
                headers={**a, "Prefer": "wait=60"},
            )
        )
        await until_queued(http, a, session_id)
        closed = await http.post(f"/v1/sessions/{session_id}/close", json={}, headers=a)
        assert closed.status_code == 200, closed.text
        answered = await asyncio.wait_for(waiting, 30)  # well inside the 60 s wait
        assert answered.status_code == 200, answered.text
        receipt = answered.json()
        assert receipt["status"] == "failed"
        assert receipt["failure"]["error_class"] == "session_closed"
