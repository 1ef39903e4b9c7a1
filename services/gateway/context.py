"""What a route needs, built once per process: the `Gateway` container and its dependencies."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from contracts.base import ID_PATTERN, is_valid_id
from services.agent_orchestration.catalogue import AgentCatalogue
from services.gateway.api_keys import Principal
from services.gateway.exchange import NO_SUCH_SESSION, Exchange, Origin
from services.gateway.idempotency import (
    UNKEPT_CODES,
    ResponseStore,
    StoredResponse,
    command_id_for,
    fingerprint,
    retry_later,
)
from services.gateway.problems import PROBLEM_CONTENT_TYPE, ApiProblem, ProblemCode
from services.gateway.session_owners import SessionOwners
from services.gateway.settings import GatewaySettings
from services.gateway.streams import SessionStreams
from services.session_commands.read_model import SessionReadModel

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: GatewaySettings
    read_model: SessionReadModel
    exchange: Exchange
    responses: ResponseStore
    catalogue: AgentCatalogue
    streams: SessionStreams
    session_owners: SessionOwners


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    final: bool = True
    """False for `pending`: not kept for replay, a retry asks the pipeline again."""

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


class Caller:
    """Who is calling, and the gateway serving them: the one dependency of every /v1 route.

    One dependency, not one per part: this FastAPI version resolves each dependency per
    request with a walk over its signature, ~20 us apiece on the hot path."""

    __slots__ = ("gateway", "principal", "request")

    def __init__(self, gateway: Gateway, principal: Principal, request: Request) -> None:
        self.gateway = gateway
        self.principal = principal
        self.request = request

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def origin(self) -> Origin:
        """Where the request came from, for the command's CloudEvents headers."""
        carrier: dict[str, str] = {}
        # The caller's trace: the server span's when spans are exported, else the caller's own
        # context as the edge middleware attached it.
        TraceContextTextMapPropagator().inject(carrier)
        return Origin(
            tenant_id=self.principal.tenant_id,
            request_id=self.request.state.request_id,
            traceparent=carrier.get("traceparent"),
            # As OpenTelemetry parsed it, never the caller's text as sent: a member it cannot
            # parse (or over 8,192 characters) is dropped here, not carried into every
            # consumer's logs.
            tracestate=carrier.get("tracestate"),
            keyed=getattr(self.request.state, "idempotency_key", None) is not None,
        )


# `async def`: FastAPI runs a plain `def` dependency in a worker thread per request.
async def caller(request: Request) -> Caller:
    # The principal is set by the edge middleware for /v1/*; the gateway at start-up.
    return Caller(request.app.state.gateway, request.state.principal, request)


CallerDep = Annotated[Caller, Depends(caller)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Becomes the command id: a retry has its effect once and gets the first "
        "answer again (kept 24 h by default).",
        # An empty key would make every keyless-by-mistake request of the tenant one command.
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
    ),
]


def session_id_or_404(session_id: str) -> str:
    """An id that cannot exist answers exactly like one that does not."""
    if not is_valid_id(session_id):
        raise ApiProblem(ProblemCode.SESSION_NOT_FOUND, NO_SUCH_SESSION)
    return session_id


SESSION_ID_PATTERN = ID_PATTERN


async def respond_once(
    caller: Caller,
    idempotency_key: str | None,
    body: object,
    run: Callable[[str], Awaitable[Reply]],
) -> JSONResponse:
    """Run a write under its command id; with a key, a retry replays the first final answer."""
    gw, request = caller.gateway, caller.request
    if idempotency_key is None:
        return (await run(f"http-command-{uuid.uuid4()}")).response()
    request.state.idempotency_key = idempotency_key  # read by `Caller.origin`
    key_id = command_id_for(caller.tenant_id, idempotency_key)
    marker = fingerprint(request.method, request.url.path, body)
    # Every route but create's names its session in the path; create's answer names it.
    path_session: str | None = request.path_params.get("session_id")
    stored = await gw.responses.find(key_id)
    if stored is None:
        stored = await gw.responses.claim(key_id, marker, session_id=path_session)
    attempt = 0
    if stored is not None:
        if stored.fingerprint != marker:
            raise ApiProblem(
                ProblemCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was sent before with a different method, path or body",
            )
        if not stored.final:
            # The same request, sent before (or concurrently) and not answered finally yet:
            # the same command again, which the pipeline applies once.
            stored = None
        elif not retry_later(stored):
            media = PROBLEM_CONTENT_TYPE if stored.status >= 400 else None
            return JSONResponse(
                stored.body, status_code=stored.status, headers=stored.headers, media_type=media
            )
        else:
            attempt = stored.attempt + 1  # "send when the turn ends": this is that send
    command_id = command_id_for(caller.tenant_id, idempotency_key, attempt)
    try:
        reply = await run(command_id)
    except ApiProblem as problem:
        if (
            problem.command_id is not None  # a decision of the session's writer: final
            and problem.code.value not in UNKEPT_CODES
        ):
            await gw.responses.keep(
                key_id,
                StoredResponse(
                    marker,
                    problem.status,
                    problem.body(instance=request.url.path, request_id=request.state.request_id),
                    problem.headers,
                    attempt,
                ),
                replacing=stored,
                session_id=path_session,
            )
        raise
    if reply.final:
        answered = reply.body.get("session_id")
        await gw.responses.keep(
            key_id,
            StoredResponse(marker, reply.status, reply.body, reply.headers, attempt),
            replacing=stored,
            session_id=path_session or (answered if isinstance(answered, str) else None),
        )
    return reply.response()
