"""Wraps a handler so each attempt runs in a span and a log context of its record."""

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Tracer

from services.runtime.keyed_consumer import Handler
from services.runtime.record import Record
from services.runtime.telemetry.log_context import log_context
from services.runtime.telemetry.tracing import extract_context

TURN_ID_HEADERS = ("turn_id", "ce_turnid")


def traced(handler: Handler, tracer: Tracer, *, consumer_group: str) -> Handler:
    async def handle(record: Record) -> None:
        turn_id = next((t for t in (record.header_text(h) for h in TURN_ID_HEADERS) if t), None)
        # The record's context made current (not only the span's parent): its baggage is then
        # what the handler's publishes carry on (ServiceRuntime.publish).
        token = otel_context.attach(extract_context(record.headers))
        try:
            await _in_span(handler, record, tracer, consumer_group, turn_id)
        finally:
            otel_context.detach(token)

    return handle


async def _in_span(
    handler: Handler, record: Record, tracer: Tracer, consumer_group: str, turn_id: str | None
) -> None:
    with (
        log_context(
            session_id=record.session_id,
            turn_id=turn_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        ),
        tracer.start_as_current_span(
            # The handling itself, from the key queue on: FastStream's telemetry middleware is
            # not installed (its span would time only the hand-off to the key queue).
            f"{record.topic} handle",
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.kafka.message.key": record.session_id or "",
                "messaging.consumer.group.name": consumer_group,
            },
        ),
    ):
        await handler(record)
