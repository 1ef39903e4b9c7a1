"""`python -m services.gateway`: the HTTP API on uvicorn until SIGTERM / SIGINT."""

import asyncio
import logging
import socket
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.gateway.app import SERVICE, build_app
from services.gateway.http_framing import ProblemHttpToolsProtocol
from services.gateway.settings import GatewaySettings
from services.runtime.kafka_access import KafkaAccessRefused, check_kafka_access
from services.runtime.settings_errors import ConfigFileError, load_settings
from services.runtime.startup_heap import freeze_startup_heap
from services.runtime.telemetry.log_context import configure_logging

log = logging.getLogger("services.gateway")


def main() -> None:
    settings = load_settings(GatewaySettings, "gateway")
    broker_outages = configure_logging(
        SERVICE, log_format=settings.log_format, level=settings.log_level
    )
    try:
        app = build_app(settings, broker_outages=broker_outages)
    except (ConfigFileError, OSError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)  # an operator's mistake: no traceback
        sys.exit(2)
    try:
        # As every service does before its clients start: the event feed and the publisher
        # would retry a wrong password or an untrusted certificate forever, never ready.
        asyncio.run(check_kafka_access(settings))
    except KafkaAccessRefused as refused:
        log.critical("%s", refused)
        sys.exit(2)
    # Here, not in the app's lifespan: only the process that owns its heap freezes it (tests
    # build the app inside pytest).
    freeze_startup_heap()
    end_streams = app.state.gateway.streams.feed.end_streams
    StreamEndingServer(server_config(app, settings), end_streams).run()


def server_config(app: FastAPI, settings: GatewaySettings) -> uvicorn.Config:
    """How the gateway runs on uvicorn (the tests start it the same way)."""
    return uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_config=None,  # our JSON/console logging, already configured
        access_log=False,
        # In C, both (pyproject.toml pins them): ~20% less CPU per request than asyncio + h11.
        # httptools' protocol, with framing errors answered as problems (http_framing.py).
        loop=settings.event_loop,
        http=ProblemHttpToolsProtocol,
        # Longer than load balancers' idle timeouts (60 s is common): the proxy, not the
        # gateway, should close idle connections, or a request can race the close.
        timeout_keep_alive=75,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )


class StreamEndingServer(uvicorn.Server):
    """uvicorn's server, which first ends the live streams when it shuts down: a stream never
    finishes by itself, so each would hold the graceful shutdown for its whole timeout and then
    be cancelled mid-body (an ERROR with a traceback per stream)."""

    def __init__(self, config: uvicorn.Config, end_streams: Callable[[], None]) -> None:
        super().__init__(config)
        self._end_streams = end_streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._end_streams()
        await super().shutdown(sockets)


if __name__ == "__main__":
    main()
