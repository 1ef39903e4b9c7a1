"""Wraps a handler so each attempt runs in a span and a log context of its record.

Two ways, one result for the handler. When the tracer records spans, each record gets a real
span (the child of its `traceparent`) with the messaging attributes. When it records nothing
(no exporter: sampler ALWAYS_OFF), building that unrecorded span, parsing `traceparent` and
filling the log context for every record cost more than the key-ordered consumer itself
(benchmarks/record_overhead.py), while most records never publish or log. Then the record's
span is made the first time something asks for it — a publish's `traceparent`, a log line's
`trace_id`, a child span — with the same tracer, so its ids are those it always had; and the
log fields are read from the record only when a line is written.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer

from services.runtime.keyed_consumer import Handler
from services.runtime.record import Record
from services.runtime.telemetry.log_context import (
    current_log_fields,
    log_context,
    reset_log_fields,
    set_log_fields,
)
from services.runtime.telemetry.record_fields import record_log_fields
from services.runtime.telemetry.tracing import DeferredSpan, extract_context, extract_trace


def traced(
    handler: Handler, tracer: Tracer, *, consumer_group: str, records_spans: bool = True
) -> Handler:
    """`records_spans=False`: the tracer samples nothing (`tracing.records_spans`), so the
    record's span is made only on demand."""
    if not records_spans:
        return _deferred(handler, tracer)

    async def handle(record: Record) -> None:
        # The record's context made current (not only the span's parent): its baggage is then
        # what the handler's publishes carry on (ServiceRuntime.publish).
        token = otel_context.attach(extract_context(record.headers))
        try:
            await _in_span(handler, record, tracer, consumer_group)
        finally:
            otel_context.detach(token)

    return handle


async def _in_span(handler: Handler, record: Record, tracer: Tracer, consumer_group: str) -> None:
    with (
        log_context(**record_log_fields(record)),
        tracer.start_as_current_span(
            # The handling itself, from the key queue on: FastStream's telemetry middleware is
            # not installed (its span would time only the hand-off to the key queue).
            _span_name(record),
            kind=SpanKind.CONSUMER,
            attributes=_attributes(record, consumer_group),
        ),
    ):
        await handler(record)


def _deferred(handler: Handler, tracer: Tracer) -> Handler:
    async def handle(record: Record) -> None:
        span = DeferredSpan(lambda: _unrecorded_span(tracer, record))
        parent = otel_context.Context()
        if _has_baggage(record):  # rare: extracted whole, so the handler sees it current
            parent = extract_context(record.headers)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        fields = set_log_fields(_RecordLogFields(record, current_log_fields()))
        try:
            await handler(record)
        finally:
            reset_log_fields(fields)
            otel_context.detach(token)

    return handle


def _unrecorded_span(tracer: Tracer, record: Record) -> Span:
    # The span `_in_span` would have started: same tracer, same parent, so the same kind of
    # ids and flags (and what OTEL_SDK_DISABLED makes of it); never current, nothing to end.
    # No attributes: a span that is not recorded drops them.
    return tracer.start_span(
        _span_name(record), context=extract_trace(record.headers), kind=SpanKind.CONSUMER
    )


class _RecordLogFields(Mapping[str, Any]):
    """A record's log fields over those already bound, read from the record at the first
    line written while it is handled (most records write none)."""

    __slots__ = ("_base", "_fields", "_record")

    def __init__(self, record: Record, base: Mapping[str, Any]) -> None:
        self._record = record
        self._base = base
        self._fields: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any]:
        if self._fields is None:
            self._fields = {**self._base, **record_log_fields(self._record)}
        return self._fields

    def __getitem__(self, key: str) -> Any:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _has_baggage(record: Record) -> bool:
    # Header names are matched case-insensitively, as the propagator's getter does.
    return any(len(name) == 7 and name.lower() == "baggage" for name, _ in record.headers)


def _span_name(record: Record) -> str:
    return f"{record.topic} handle"


def _attributes(record: Record, consumer_group: str) -> dict[str, str | int]:
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
        "messaging.kafka.message.key": record.session_id or "",
        "messaging.consumer.group.name": consumer_group,
    }
