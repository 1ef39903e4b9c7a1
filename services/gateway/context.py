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
from services.gateway.idempotency import ResponseStore, StoredResponse, command_id_for, fingerprint
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


# Dependencies are `async def`: FastAPI runs plain `def` ones in a worker thread per request.
async def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found


async def principal(request: Request) -> Principal:
    found: Principal = request.state.principal  # set by the edge middleware for /v1/*
    return found


async def origin(request: Request, who: Annotated[Principal, Depends(principal)]) -> Origin:
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)  # the server span, child of the caller's
    return Origin(
        tenant_id=who.tenant_id,
        request_id=request.state.request_id,
        traceparent=carrier.get("traceparent"),
        tracestate=request.headers.get("tracestate"),
    )


GatewayDep = Annotated[Gateway, Depends(gateway)]
PrincipalDep = Annotated[Principal, Depends(principal)]
OriginDep = Annotated[Origin, Depends(origin)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Becomes the command id: a retry has its effect once and gets the first "
        "answer again (kept 24 h by default).",
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
    gw: Gateway,
    request: Request,
    who: Principal,
    idempotency_key: str | None,
    body: object,
    run: Callable[[str], Awaitable[Reply]],
) -> JSONResponse:
    """Run a write under its command id; with a key, a retry replays the first final answer."""
    if idempotency_key is None:
        return (await run(f"http-command-{uuid.uuid4()}")).response()
    command_id = command_id_for(who.tenant_id, idempotency_key)
    marker = fingerprint(request.method, request.url.path, body)
    stored = await gw.responses.find(command_id)
    if stored is not None:
        if stored.fingerprint != marker:
            raise ApiProblem(
                ProblemCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was sent before with a different method, path or body",
            )
        media = PROBLEM_CONTENT_TYPE if stored.status >= 400 else None
        return JSONResponse(
            stored.body, status_code=stored.status, headers=stored.headers, media_type=media
        )
    try:
        reply = await run(command_id)
    except ApiProblem as problem:
        if problem.command_id is not None:  # a decision of the session's writer: final
            await gw.responses.keep(
                command_id,
                StoredResponse(
                    marker,
                    problem.status,
                    problem.body(instance=request.url.path, request_id=request.state.request_id),
                    problem.headers,
                ),
            )
        raise
    if reply.final:
        await gw.responses.keep(
            command_id, StoredResponse(marker, reply.status, reply.body, reply.headers)
        )
    return reply.response()
