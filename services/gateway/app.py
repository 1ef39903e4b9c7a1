"""Wiring of the HTTP gateway: `python -m services.gateway` (uvicorn) or `build_app()` in tests.

    HTTP ─▶ EdgeMiddleware (request id, trace, size, API key, rate limit)
          ─▶ routes ─▶ CommandPublisher ─▶ [commands]
                    ─▶ SessionReadModel (MongoDB, session-commands' read contract)
          ◀─ SessionEventFeed ◀─ [session-events]   (decisions and answers to wait for)

Stateless: any number of replicas behind a load balancer; the only stored thing of its own
is the replay of idempotent answers (MongoDB, shared by the replicas).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pymongo import AsyncMongoClient

from contracts.topics import TopicName
from services.agent_orchestration.catalogue_file import load_catalogue
from services.gateway.api_keys import ApiKeyRegistry
from services.gateway.command_publisher import CommandPublisher
from services.gateway.context import Gateway
from services.gateway.edge import EdgeMiddleware
from services.gateway.errors import install_error_handlers
from services.gateway.event_feed import SessionEventFeed
from services.gateway.exchange import Exchange
from services.gateway.idempotency import ResponseStore
from services.gateway.jwt_auth import JwtVerifier
from services.gateway.rate_limit import KeyRateLimiter
from services.gateway.routes import (
    agents,
    console,
    health,
    messages,
    sessions,
    streams,
    tool_calls,
    turns,
)
from services.gateway.routes.responses import (
    declare_unsupported_media_type,
    problem_schema_where_it_is_sent,
)
from services.gateway.session_owners import SessionOwners
from services.gateway.settings import GatewaySettings
from services.gateway.stream_cursor import StreamTopic
from services.gateway.stream_replay import StreamReplay
from services.gateway.streams import SessionStreams
from services.runtime import header_names
from services.runtime.command_signing import signing_key
from services.runtime.kafka_security import kafka_client_options
from services.runtime.periodic import PeriodicJob
from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary
from services.runtime.telemetry.tracing import configure_tracing, records_spans
from services.session_commands.read_model import Document, SessionReadModel

SERVICE = "gateway"
API_VERSION = "1.0.0"
_MONGO_TIMEOUT_MS = 3_000


def build_app(
    settings: GatewaySettings | None = None, *, broker_outages: BrokerOutageSummary | None = None
) -> FastAPI:
    """`broker_outages`: the log handler's summary (`configure_logging`), told every second to
    write "broker reachable again" once an outage is over, as the consumer services do."""
    settings = settings or GatewaySettings()
    # Before the event feed and the stream replays fetch: a record whose header name is not
    # UTF-8 (any producer can write one) must not fail every fetch (header_names.py).
    header_names.install()
    keys = ApiKeyRegistry.load(settings.gateway_api_keys, settings.gateway_api_keys_file)
    catalogue = load_catalogue(settings.agent_catalogue_path)
    tracer_provider = configure_tracing(
        SERVICE, otlp_endpoint=settings.otlp_endpoint, console=settings.console_telemetry
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri,
        serverSelectionTimeoutMS=_MONGO_TIMEOUT_MS,
        connectTimeoutMS=_MONGO_TIMEOUT_MS,
        timeoutMS=_MONGO_TIMEOUT_MS * 2,
    )
    database = mongo[settings.mongodb_database]
    # Every Kafka client of the gateway (publisher, event feed, stream replays) is named
    # prefix + `gateway` in the broker's logs, metrics and quotas, as every service's are.
    kafka_options = {**kafka_client_options(settings), "client_id": settings.client_id(SERVICE)}
    responses = ResponseStore(database, settings.gateway_idempotency_retention_s)
    feed = SessionEventFeed(
        settings.kafka_bootstrap_servers,
        settings.topics.name(TopicName.SESSION_EVENTS),
        client_options=kafka_options,
        stream_topic=settings.topics.name(TopicName.LLM_STREAM),
        # An erased session's kept answers hold its content: gone with it, whoever erased it.
        on_erased=responses.forget_session_soon,
    )
    publisher = CommandPublisher(
        settings.kafka_bootstrap_servers,
        settings.topics.name(TopicName.COMMANDS),
        timeout_s=settings.gateway_produce_timeout_s,
        client_options=kafka_options,
        source=settings.gateway_source,
        signing_key=signing_key(settings.gateway_hmac_key, settings.gateway_hmac_key_file),
    )
    read_model = SessionReadModel(database)
    purge = PeriodicJob("idempotency purge", responses.purge, interval_s=3600.0)

    async def check_broker_recovery() -> None:
        if broker_outages is not None:
            broker_outages.check_recovery()

    broker_recovery = PeriodicJob("broker recovery check", check_broker_recovery, interval_s=1.0)
    gateway = Gateway(
        settings=settings,
        read_model=read_model,
        exchange=Exchange(
            feed,
            publisher,
            read_model,
            decision_timeout_s=settings.gateway_decision_timeout_s,
            retry_after_s=settings.gateway_retry_after_s,
        ),
        responses=responses,
        catalogue=catalogue,
        streams=SessionStreams(
            feed,
            StreamReplay(
                settings.kafka_bootstrap_servers,
                {topic: settings.topics.name(TopicName(topic.value)) for topic in StreamTopic},
                client_options=kafka_options,
                concurrency=settings.gateway_stream_replay_concurrency,
            ),
            buffer=settings.gateway_stream_buffer,
            max_replay_records=settings.gateway_stream_max_replay_records,
            heartbeat_s=settings.gateway_stream_heartbeat_s,
            retry_after_s=settings.gateway_retry_after_s,
        ),
        session_owners=SessionOwners(
            read_model,
            ttl_s=settings.gateway_session_owner_ttl_s,
            max_sessions=settings.gateway_session_owner_cache,
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        await publisher.start()
        await purge.start()
        await broker_recovery.start()
        try:
            yield
        finally:
            await broker_recovery.stop()
            await purge.stop()
            await feed.stop()
            await publisher.stop()
            await mongo.close()

    async def broker_ready() -> bool:
        if not publisher.connected:
            await publisher.start()
        return feed.ready and await publisher.reachable()

    async def mongo_ready() -> bool:
        await database.command("ping")
        return True

    server_spans = records_spans(tracer_provider)
    app = FastAPI(
        title="Agent Runtime API",
        version=API_VERSION,
        description="Sessions, messages and agents over the Kafka pipeline. Errors are RFC 9457 "
        "problem+json with a stable `code`; see docs/gateway.md.",
        lifespan=lifespan,
        redirect_slashes=False,  # one URL per resource; `/v1/sessions/` is a 404 problem
        # FastAPI's native OpenTelemetry: the server span, parent = the caller's traceparent,
        # when spans are exported. Unexported, that span is ~15% of a request's CPU for
        # nothing: the edge middleware passes the caller's trace context on instead.
        # Metrics stay Prometheus (/metrics, like every service); logs stay ours.
        telemetry={
            "tracer_provider": tracer_provider,
            "tracing": server_spans,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
        },
    )
    _document_bearer_auth(app)
    app.state.gateway = gateway
    app.state.readiness_checks = {"broker": broker_ready, "mongo": mongo_ready}
    # Matched in this order, and no two routers share a path: the busiest route (a message)
    # first, so it is found without trying every other router's routes.
    routers = (
        messages.router,
        sessions.router,
        turns.router,
        tool_calls.router,
        agents.router,
        health.router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(streams.router)
    console.install(app)
    install_error_handlers(app, retry_after_s=settings.gateway_retry_after_s)
    app.add_middleware(
        EdgeMiddleware,
        keys=keys,
        limiter=KeyRateLimiter(
            settings.gateway_rate_limit_per_minute, settings.gateway_rate_limit_burst
        ),
        max_body_bytes=settings.gateway_max_body_bytes,
        jwt=_jwt_verifier(settings),
        retry_after_s=settings.gateway_retry_after_s,
        caller_trace_context=not server_spans,
    )
    return app


def _jwt_verifier(settings: GatewaySettings) -> JwtVerifier | None:
    if not settings.gateway_jwt_jwks_url:
        return None
    assert settings.gateway_jwt_issuer
    assert settings.gateway_jwt_audience
    return JwtVerifier(
        jwks_url=settings.gateway_jwt_jwks_url,
        issuer=settings.gateway_jwt_issuer,
        audience=settings.gateway_jwt_audience,
        tenant_claim=settings.gateway_jwt_tenant_claim,
        algorithms=settings.gateway_jwt_algorithms,
        leeway_s=settings.gateway_jwt_leeway_s,
    )


def _document_bearer_auth(app: FastAPI) -> None:
    """The edge middleware authenticates, so the routes declare nothing: say it in OpenAPI."""
    build_document = app.openapi

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build_document()
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key; it names the tenant. See docs/gateway.md.",
                }
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"apiKey": []}]
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        problem_schema_where_it_is_sent(response)
                    declare_unsupported_media_type(operation)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
