import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime.record import Record
from services.runtime.telemetry.log_context import (
    ContextFilter,
    JsonFormatter,
    bind_log_context,
)
from services.runtime.telemetry.record_span import traced
from services.runtime.telemetry.tracing import current_traceparent

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.setFormatter(JsonFormatter("svc"))
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_handler_runs_in_a_child_span_of_the_traceparent_with_log_context() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logger = logging.getLogger("test.telemetry")
    capture = Capture()
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    outgoing: list[str | None] = []

    async def handler(record: Record) -> None:
        bind_log_context(turn_id="turn-9")
        logger.info("handling")
        outgoing.append(current_traceparent())

    record = Record("commands", 2, 17, b"session-1", b"{}", (("traceparent", PARENT.encode()),))
    try:
        await traced(handler, provider.get_tracer("t"), consumer_group="g")(record)
    finally:
        logger.removeHandler(capture)

    [span] = exporter.get_finished_spans()
    assert span.name == "commands handle"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes is not None
    assert span.attributes["messaging.kafka.offset"] == 17
    [line] = capture.lines
    assert line["session_id"] == "session-1"
    assert line["turn_id"] == "turn-9"
    assert line["trace_id"] == TRACE_ID
    assert line["offset"] == 17
    assert line["message"] == "handling"
    # What the handler publishes continues the same trace, under the handler's span.
    assert outgoing[0] is not None
    assert outgoing[0].split("-")[1] == TRACE_ID
    assert outgoing[0].split("-")[2] == format(span.context.span_id, "016x")


async def test_failures_mark_the_span_and_propagate() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def handler(record: Record) -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await traced(handler, provider.get_tracer("t"), consumer_group="g")(
            Record("t", 0, 0, None, b"")
        )
    [span] = exporter.get_finished_spans()
    assert not span.status.is_ok


def test_without_an_exporter_spans_are_not_recorded_but_still_propagate() -> None:
    from services.runtime.telemetry.tracing import configure_tracing, extract_context

    provider = configure_tracing("svc")  # no OTLP endpoint, no console: nothing exported
    tracer = provider.get_tracer("t")
    parent = extract_context([("traceparent", PARENT.encode())])
    with tracer.start_as_current_span("handle", context=parent) as span:
        assert not span.is_recording()
        outgoing = current_traceparent()
    assert outgoing is not None
    assert outgoing.split("-")[1] == TRACE_ID  # the trace continues
    assert outgoing.split("-")[2] == format(span.get_span_context().span_id, "016x")
