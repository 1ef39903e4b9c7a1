"""A live stream's request over HTTP, on the broker with session-commands: an empty resume id
is no id, HEAD answers what GET would without a body."""

from collections.abc import AsyncIterator

import httpx
import pytest

from services.gateway.context import Gateway
from services.gateway.stream_cursor import Cursor
from tests.e2e.sse_client import SseEvent, sse_events
from tests.integration.gateway.in_process import InProcessGateway
from tests.integration.gateway.with_session_commands import gateway_over_session_commands

pytestmark = pytest.mark.integration

SESSION = "s-stream-requests"
EVENTS = f"/v1/sessions/{SESSION}/events"


@pytest.fixture
async def gateway(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[InProcessGateway]:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"sreq-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post(
            "/v1/sessions", json={"session_id": SESSION}, headers=gateway.auth
        )
        assert created.status_code == 201, created.text
        yield gateway


def _gateway(gw: InProcessGateway) -> Gateway:
    found = gw.app.state.gateway
    assert isinstance(found, Gateway)
    return found


async def _replayed(response: httpx.Response) -> list[SseEvent]:
    assert response.status_code == 200, response.text
    return [event async for event in sse_events(response)]


async def test_an_empty_resume_id_is_a_stream_from_now_on(gateway: InProcessGateway) -> None:
    """EventSource never sends an empty `Last-Event-ID`, but a proxy may pass one on: it was
    422 `validation_failed`, as was `?after=` built from an empty variable."""
    # Streams end after what they hold (as when the replica stops), so that each answer below
    # is a whole body over the in-process transport: `stream_started` and the replay.
    _gateway(gateway).streams.feed.end_streams()
    fresh = await gateway.http.get(EVENTS, headers=gateway.auth)
    [started] = await _replayed(fresh)
    assert (started.event, started.data["resumed"]) == ("stream_started", False)
    end = Cursor.parse(started.id or "")

    for headers, query in (
        ({"Last-Event-ID": ""}, ""),
        ({}, "?after="),
        ({"Last-Event-ID": ""}, "?after="),
    ):
        response = await gateway.http.get(EVENTS + query, headers={**gateway.auth, **headers})
        [again] = await _replayed(response)
        assert (again.event, again.data["resumed"], again.id) == (
            "stream_started",
            False,
            str(end),
        ), (headers, query)

    # An empty header leaves `?after=` in charge: the resume replays the session's creation.
    start = Cursor(end.partition, end.session_events - 1, end.llm_stream)
    response = await gateway.http.get(
        f"{EVENTS}?after={start}", headers={**gateway.auth, "Last-Event-ID": ""}
    )
    events = await _replayed(response)
    assert [(e.event, e.id) for e in events] == [
        ("stream_started", str(start)),
        ("session_created", str(end)),
    ]
    assert events[0].data["resumed"] is True


async def test_head_answers_what_get_would_without_a_body(gateway: InProcessGateway) -> None:
    """HEAD was 405: it takes GET's decisions (404, 400, 422) and sends GET's headers, and
    leaves no stream attached."""
    head = await gateway.http.head(EVENTS, headers=gateway.auth)
    assert head.status_code == 200, head.text
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.headers["cache-control"] == "no-cache"
    assert head.content == b""
    assert _gateway(gateway).streams.feed.stream_count == 0

    missing = await gateway.http.head("/v1/sessions/s-nobody/events", headers=gateway.auth)
    assert missing.status_code == 404
    elsewhere = await gateway.http.head(f"{EVENTS}?after=v1.99999.0.0", headers=gateway.auth)
    assert elsewhere.status_code == 400
    malformed = await gateway.http.head(EVENTS, headers={**gateway.auth, "Last-Event-ID": "x"})
    assert malformed.status_code == 422
    unauthenticated = await gateway.http.head(EVENTS)
    assert unauthenticated.status_code == 401

    refused = await gateway.http.post(EVENTS, headers=gateway.auth)
    assert refused.status_code == 405
    assert set(refused.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}
