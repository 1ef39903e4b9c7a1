"""`/health/live`, `/health/ready`, `/metrics`: the same probes every service answers."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.gateway.schemas import Health
from services.runtime.health import READINESS_CHECK_TIMEOUT_S

router = APIRouter(tags=["health"])

ReadinessCheck = Callable[[], Awaitable[bool]]


@router.get("/health/live", response_model=Health)
async def live() -> Health:
    return Health(status="live")


@router.get("/health/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request) -> JSONResponse:
    """200 when the broker (producer and event feed) and MongoDB answer; 503 naming the rest."""
    checks: dict[str, ReadinessCheck] = request.app.state.readiness_checks

    async def run(check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), READINESS_CHECK_TIMEOUT_S)
        except Exception:
            return False

    names = list(checks)
    results = await asyncio.gather(*(run(checks[n]) for n in names))
    outcome = dict(zip(names, results, strict=True))
    healthy = all(outcome.values())
    body = Health(status="ready" if healthy else "not ready", checks=outcome)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
