"""Wraps a handler so each attempt runs in a span and a log context of its record."""

from opentelemetry.trace import SpanKind, Tracer

from services.runtime.keyed_consumer import Handler
from services.runtime.record import Record
from services.runtime.telemetry.log_context import log_context
from services.runtime.telemetry.tracing import extract_context

TURN_ID_HEADERS = ("turn_id", "ce_turnid")


def traced(handler: Handler, tracer: Tracer, *, consumer_group: str) -> Handler:
    async def handle(record: Record) -> None:
        turn_id = next((t for t in (record.header_text(h) for h in TURN_ID_HEADERS) if t), None)
        with (
            log_context(
                session_id=record.session_id,
                turn_id=turn_id,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            ),
            tracer.start_as_current_span(
                # FastStream's own "<topic> process" span covers the hand-off to the key
                # queue; this one covers the handling itself.
                f"{record.topic} handle",
                context=extract_context(record.headers),
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

    return handle
