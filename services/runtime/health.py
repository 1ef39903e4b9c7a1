"""A tiny HTTP server for Kubernetes probes and Prometheus: no web framework needed.

- `GET /health/live`  — 200 while the event loop answers.
- `GET /health/ready` — 200 when every readiness check passes (the consumers hold an
  assignment, dependencies such as MongoDB answer); 503 with the failing checks otherwise.
- `GET /metrics`      — Prometheus text format: the runtime's registry and the default one.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
# How long each readiness check may take (the gateway's too); the manifests' readinessProbe
# timeoutSeconds stays above it (tests/unit/deploy/test_rendered_manifests.py).
READINESS_CHECK_TIMEOUT_S: Final = 2.0
_REQUEST_TIMEOUT_S: Final = 5.0


class HealthServer:
    def __init__(
        self, registry: CollectorRegistry, host: str = "0.0.0.0", port: int = 8080
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._checks: dict[str, ReadinessCheck] = {}
        self._server: asyncio.Server | None = None
        self._first_ready: list[Callable[[], None]] = []

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def on_first_ready(self, callback: Callable[[], None]) -> None:
        """`callback` runs once, the first time every check passes, before that answer is
        returned: whoever saw the probe answer 200 finds what the callback logged."""
        self._first_ready.append(callback)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        # DEBUG: the service's one ready line is its start-up news (service_runtime.py).
        log.debug("health server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def readiness(self) -> dict[str, bool]:
        async def run(check: ReadinessCheck) -> bool:
            try:
                return await asyncio.wait_for(check(), READINESS_CHECK_TIMEOUT_S)
            except Exception:
                return False

        names = list(self._checks)
        results = await asyncio.gather(*(run(self._checks[n]) for n in names))
        if all(results) and self._first_ready:
            callbacks, self._first_ready = self._first_ready, []
            for callback in callbacks:
                callback()
        return dict(zip(names, results, strict=True))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT_S)
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = await self._route(method, path)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
        ):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if path == "/health/live":
            return "200 OK", "application/json", b'{"status":"live"}'
        if path == "/health/ready":
            checks = await self.readiness()
            ready = all(checks.values())
            body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks})
            status = "200 OK" if ready else "503 Service Unavailable"
            return status, "application/json", body.encode()
        if path == "/metrics":
            # The runtime's own registry, plus the process-wide default one where service
            # modules register their metrics (and prometheus_client its process collectors).
            metrics = generate_latest(self._registry) + generate_latest(REGISTRY)
            return "200 OK", CONTENT_TYPE_LATEST, metrics
        return "404 Not Found", "text/plain", b"not found\n"
