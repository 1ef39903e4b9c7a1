"""A gateway app in this process (httpx over ASGI), its lifespan running, with one API key."""

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from services.gateway.api_keys import hash_api_key, new_api_key
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary


@dataclass(frozen=True)
class InProcessGateway:
    http: httpx.AsyncClient
    key: str
    app: FastAPI

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def until_ready(self, timeout_s: float = 60.0, why: str = "gateway not ready") -> None:
        """Until `/health/ready` answers 200 (the broker connected, the event feed positioned)."""
        deadline = time.monotonic() + timeout_s
        while (await self.http.get("/health/ready")).status_code != 200:
            assert time.monotonic() < deadline, why
            await asyncio.sleep(0.2)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def in_process_gateway(
    tenant: str = "acme", broker_outages: BrokerOutageSummary | None = None, **overrides: object
) -> AsyncIterator[InProcessGateway]:
    key = new_api_key()
    settings = GatewaySettings(
        gateway_api_keys={hash_api_key(key): tenant},
        **overrides,  # type: ignore[arg-type]
    )
    app = build_app(settings, broker_outages=broker_outages)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", timeout=60.0
        ) as http:
            yield InProcessGateway(http=http, key=key, app=app)


def keys_json(key: str, tenant: str) -> str:
    return json.dumps({hash_api_key(key): tenant})
