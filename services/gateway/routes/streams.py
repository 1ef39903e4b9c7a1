"""Live streams: `GET /v1/sessions/{id}/events` (SSE, resumable) and the original's
`POST /v1/messages/stream` (submit, then stream until the turn ends). See docs/gateway.md."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import StringConstraints
from starlette.types import Receive, Scope, Send

from contracts.base import Id, Message, derive_id
from contracts.commands import SubmitUserMessage
from contracts.session_events import CommandRejected, SessionEvent
from contracts.stream_events import CURSOR_PATTERN, TURN_END_EVENTS
from services.gateway.context import CallerDep, Gateway, session_id_or_404
from services.gateway.exchange import NO_SUCH_SESSION
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.routes.messages import cancelled_turn_over, turn_id_for
from services.gateway.routes.responses import problems
from services.gateway.schemas import SubmitMessageRequest
from services.gateway.stream_sink import StreamItem
from services.gateway.streams import OpenStream, StopWhen

router = APIRouter(tags=["streams"])

EVENT_STREAM = "text/event-stream"
_STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends: pass each event on at once
}
_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events; event names and data schemas: "
        "contracts/schemas/stream/ and docs/gateway.md (Live streams).",
        "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
    }
}


class EventStreamResponse(StreamingResponse):
    """Detaches the stream even when the client left before the first byte was sent."""

    def __init__(self, opened: OpenStream, headers: dict[str, str], stop: StopWhen | None) -> None:
        super().__init__(
            opened.frames(stop), media_type=EVENT_STREAM, headers={**_STREAM_HEADERS, **headers}
        )
        self._opened = opened

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._opened.close()


class EventStreamHead(StreamingResponse):
    """HEAD of a stream: GET's status and headers, no body (and no stream left attached)."""

    def __init__(self) -> None:
        super().__init__(iter(()), media_type=EVENT_STREAM, headers=_STREAM_HEADERS)


# An empty id is no id: EventSource never sends one, but a proxy may pass an empty
# `Last-Event-ID` on, and a script may build `?after=` from an empty variable; both mean what
# the request without it means, a stream from now on.
ResumeFrom = Annotated[str, StringConstraints(pattern=rf"^(?:{CURSOR_PATTERN})?$")]
LastEventId = Annotated[
    ResumeFrom | None,
    Header(alias="Last-Event-ID", description="Resume after this event (EventSource)."),
]
After = Annotated[ResumeFrom | None, Query(description="As `Last-Event-ID`.")]


async def _owned_session(gw: Gateway, tenant_id: str, session_id: str) -> str:
    session_id = session_id_or_404(session_id)
    if not await gw.session_owners.owns(tenant_id, session_id):
        raise ApiProblem(ProblemCode.SESSION_NOT_FOUND, NO_SUCH_SESSION)
    return session_id


@router.get(
    "/v1/sessions/{session_id}/events",
    response_class=StreamingResponse,
    responses={**_SSE_DOC, **problems(400, 404, 410)},
    summary="Live events and tokens of a session (SSE, resumable)",
)
async def session_events(
    session_id: str, caller: CallerDep, last_event_id: LastEventId = None, after: After = None
) -> EventStreamResponse:
    """Everything from now on (or after `Last-Event-ID` / `?after=`): each event's `id`
    resumes the stream exactly after it. 410 `stream_expired` when the missed events are past
    the topics' retention: read the history, then open a new stream."""
    session_id = await _owned_session(caller.gateway, caller.tenant_id, session_id)
    opened = await caller.gateway.streams.open(
        caller.tenant_id, session_id, last_event_id or after or None
    )
    return EventStreamResponse(opened, {}, None)


@router.head(
    "/v1/sessions/{session_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The headers GET would send; no body.", "content": {EVENT_STREAM: {}}},
        **problems(400, 404, 410),
    },
    summary="The live stream's answer without its body",
)
async def session_events_head(
    session_id: str, caller: CallerDep, last_event_id: LastEventId = None, after: After = None
) -> EventStreamHead:
    """What GET would answer (RFC 9110), without the body: the same decisions (404, 400, 410,
    503), then the headers. Its own route, because GET's body never ends: the stream is opened
    for the decisions and closed at once."""
    session_id = await _owned_session(caller.gateway, caller.tenant_id, session_id)
    opened = await caller.gateway.streams.open(
        caller.tenant_id, session_id, last_event_id or after or None
    )
    opened.close()
    return EventStreamHead()


# The session events after which no event of a turn can follow: a closed, expired or erased
# session runs no turn, and a message queued behind the running turn never gets one.
_SESSION_END_EVENTS = frozenset({"session_closed", "session_expired", "session_erased"})


def message_stream_over(name: str, message: Message, *, turn_id: str, command_id: str) -> bool:
    """True when `POST /v1/messages/stream` ends after this event: its turn completed,
    failed or stopped (a cancelled queued turn stops at its `turn_cancelled`), its command was
    refused, or the session can run no turn any more."""
    if isinstance(message, CommandRejected):
        return message.rejected_command_id == command_id
    if isinstance(message, SessionEvent) and cancelled_turn_over(message, turn_id):
        return True
    if name in TURN_END_EVENTS:
        return getattr(message, "turn_id", None) == turn_id
    return name in _SESSION_END_EVENTS


class StreamMessageRequest(SubmitMessageRequest):
    session_id: Id


@router.post(
    "/v1/messages/stream",
    response_class=StreamingResponse,
    responses={**_SSE_DOC, **problems(404, 409)},
    summary="Send a user message and stream its turn (the original's endpoint)",
)
async def stream_message(body: StreamMessageRequest, caller: CallerDep) -> EventStreamResponse:
    """The stream starts before the command is published, so it holds the message's
    acceptance, the turn, its tokens and its end; it ends after `turn_completed` /
    `turn_failed` / `turn_stopped` of this turn (`turn_cancelled` when it was cancelled while
    queued), or the session's close, expiry or erasure. A refusal is the same problem as
    `POST /v1/sessions/{id}/messages`, before any byte. Resume with `GET …/events`."""
    session_id = await _owned_session(caller.gateway, caller.tenant_id, body.session_id)
    opened = await caller.gateway.streams.open(caller.tenant_id, session_id, None)
    try:
        command_id = f"http-command-{uuid.uuid4()}"  # as a POST without Idempotency-Key
        message_id = body.message_id or derive_id("message", command_id)
        command = SubmitUserMessage(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            message_id=message_id,
            content=body.content,
            author_name=body.author_name,
        )
        turn_id = turn_id_for(session_id, message_id)
        async with caller.gateway.exchange.submit(command, caller.origin(), turn_id=turn_id):
            pass  # a refusal raised its problem; an acceptance (or no decision yet) streams
    except BaseException:
        opened.close()
        raise

    def turn_over(name: str, item: StreamItem) -> bool:
        return message_stream_over(name, item.message, turn_id=turn_id, command_id=command_id)

    headers = {"X-Command-Id": command_id, "X-Message-Id": message_id, "X-Turn-Id": turn_id}
    return EventStreamResponse(opened, headers, turn_over)
