"""Traces by OpenTelemetry's conventions, end to end: the four services configured only with
`OTEL_*` variables export OTLP/HTTP to a receiver of this test, with the resource attributes
given, GenAI attributes on the LLM call, MongoDB client spans, one trace for the turn, and the
caller's W3C baggage carried on the records the turn produced."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from contracts.codec import encode
from contracts.commands import SubmitUserMessage
from contracts.session_events import TurnCompleted
from contracts.topics import TopicName
from services.cli.session_client import SessionClient, new_id, new_traceparent
from tests.e2e.conftest import Pipeline
from tests.e2e.test_metrics import create_session, read_to_the_end

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


class Span:
    def __init__(self, service: str, resource: dict[str, object], span: object) -> None:
        self.service = service
        self.resource = resource
        self.name: str = span.name  # type: ignore[attr-defined]
        self.trace_id: str = span.trace_id.hex()  # type: ignore[attr-defined]
        self.attributes = {a.key: _value(a.value) for a in span.attributes}  # type: ignore[attr-defined]


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


class OtlpReceiver:
    """The smallest OTLP/HTTP trace receiver: POST /v1/traces, protobuf in, spans kept."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = next(
                int(line.split(":", 1)[1])
                for line in head.split("\r\n")
                if line.lower().startswith("content-length:")
            )
            request = ExportTraceServiceRequest.FromString(await reader.readexactly(length))
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                service = str(resource.get("service.name"))
                for scope in resource_spans.scope_spans:
                    self.spans += [Span(service, resource, s) for s in scope.spans]
            body = ExportTraceServiceResponse().SerializeToString()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    found = OtlpReceiver()
    server = await asyncio.start_server(found.serve, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
def pipeline_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e,team=ops",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export batches every 0.2 s, not 5 s
    }


async def test_turn_spans_are_exported_by_convention_with_baggage_on_the_records(
    receiver: OtlpReceiver, pipeline: Pipeline
) -> None:
    settings = pipeline.settings
    session_id = new_id("traces")
    ids = {"session_id": session_id, "tenant_id": settings.tenant_id}
    traceparent = new_traceparent()
    trace_id = traceparent.split("-")[1]
    async with SessionClient(settings, session_id) as client:
        await client.submit(create_session(ids))
        message = SubmitUserMessage(
            id=new_id("cmd"), **ids, message_id=new_id("msg"), content="What is a monad?"
        )
        record = encode(message, source="e2e", correlation_id=message.id, traceparent=traceparent)
        await publish(
            pipeline, record.key, record.value, [*record.headers, ("baggage", b"tier=gold")]
        )
        completed = [u async for u in client.updates(timeout_s=30) if isinstance(u, TurnCompleted)]
    assert completed, "the turn did not complete"

    def turn_spans() -> list[Span]:
        return [s for s in receiver.spans if s.trace_id == trace_id]

    deadline = asyncio.get_running_loop().time() + 60
    while not (
        {"session-commands", "agent-orchestration", "llm-invocation", "audit"}
        <= {s.service for s in turn_spans()}
        and any(s.name.startswith("chat ") for s in turn_spans())
    ):
        assert asyncio.get_running_loop().time() < deadline, (
            f"spans of the turn's trace: {sorted({(s.service, s.name) for s in turn_spans()})}"
        )
        await asyncio.sleep(0.2)

    spans = turn_spans()
    assert all(s.resource.get("deployment.environment") == "e2e" for s in spans)
    assert all(s.resource.get("team") == "ops" for s in spans)
    # One call per step: the orchestrator's hand-off (tool_calls), then the answer (stop).
    chats = [s for s in spans if s.name.startswith("chat ")]
    for chat in chats:
        assert chat.service == "llm-invocation"
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == chat.name.removeprefix("chat ")
        assert int(str(chat.attributes["gen_ai.usage.input_tokens"])) > 0
    assert ("stop",) in {chat.attributes["gen_ai.response.finish_reasons"] for chat in chats}
    mongo = [
        s
        for s in spans
        if "mongodb" in (s.attributes.get("db.system"), s.attributes.get("db.system.name"))
    ]
    assert {s.service for s in mongo} >= {"session-commands", "audit"}  # pymongo instrumented

    for topic in (TopicName.SESSION_EVENTS, TopicName.LLM_REQUESTS, TopicName.LLM_RESULTS):
        headers = await headers_of_session(pipeline, topic, session_id)
        assert headers, f"no record of the session on {topic}"
        assert all(h.get("baggage") == b"tier=gold" for h in headers), (topic, headers)


async def publish(
    pipeline: Pipeline, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            pipeline.catalogue.name(TopicName.COMMANDS), value, key=key, headers=headers
        )
    finally:
        await producer.stop()


async def headers_of_session(
    pipeline: Pipeline, topic: TopicName, session_id: str
) -> list[dict[str, bytes]]:
    """Headers of the session's records on `topic`, except those caused by its creation."""
    consumer = AIOKafkaConsumer(
        pipeline.catalogue.name(topic),
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await read_to_the_end(consumer)
    finally:
        await consumer.stop()
    return [
        dict(record.headers)
        for record in records
        if record.key == session_id.encode()
        and b"session.created" not in dict(record.headers).get("ce_type", b"")
    ]
