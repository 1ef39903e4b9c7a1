"""With nothing sampled, a record's span is made only when something asks for its ids, and
the handler sees the same trace, log fields and baggage as with a recorded span."""

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.runtime.record import Record
from services.runtime.telemetry.log_context import (
    ContextFilter,
    JsonFormatter,
    bind_log_context,
    current_log_fields,
)
from services.runtime.telemetry.record_span import traced
from services.runtime.telemetry.tracing import (
    configure_tracing,
    current_baggage,
    current_traceparent,
    extract_context,
    extract_trace,
    records_spans,
)

pytestmark = pytest.mark.unit

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class CountingTracer(Tracer):
    """The SDK's tracer, counting the spans it starts."""

    started = 0

    def start_span(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        CountingTracer.started += 1
        return super().start_span(*args, **kwargs)


@pytest.fixture
def tracer() -> Tracer:
    real = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
    assert isinstance(real, Tracer)
    CountingTracer.started = 0
    real.__class__ = CountingTracer
    return real


@pytest.fixture
def lines() -> Iterator[list[dict[str, object]]]:
    captured: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(json.loads(self.format(record)))

    handler = Capture()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter("svc"))
    logger = logging.getLogger("test.deferred")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield captured
    logger.removeHandler(handler)


def _record(*headers: tuple[str, bytes]) -> Record:
    return Record("commands", 2, 17, b"session-1", b"{}", headers)


def test_nothing_sampled_means_deferred() -> None:
    assert not records_spans(configure_tracing("svc", environ={}))
    assert records_spans(TracerProvider())


async def test_no_span_is_made_for_a_record_nobody_asks_about(tracer: Tracer) -> None:
    seen: list[object] = []

    async def handler(record: Record) -> None:
        seen.append(record.offset)

    await traced(handler, tracer, consumer_group="g", records_spans=False)(
        _record(("traceparent", PARENT.encode()))
    )
    assert seen == [17]
    assert CountingTracer.started == 0


async def test_the_trace_continues_with_one_span_id_per_record(
    tracer: Tracer, lines: list[dict[str, object]]
) -> None:
    asked: list[str | None] = []

    async def handler(record: Record) -> None:
        asked.append(current_traceparent())
        bind_log_context(turn_id="turn-9")
        logging.getLogger("test.deferred").info("handling")
        asked.append(current_traceparent())
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)  # OpenTelemetry's own reading
        assert carrier["traceparent"] == asked[-1]

    handle = traced(handler, tracer, consumer_group="g", records_spans=False)
    await handle(_record(("traceparent", PARENT.encode()), ("ce_turnid", b"turn-1")))
    await handle(_record(("traceparent", PARENT.encode())))

    first, again, second, _ = asked
    assert first is not None
    assert second is not None
    version, trace_id, span_id, flags = first.split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")  # not sampled, same trace
    assert span_id != "00f067aa0ba902b7"  # the record's own span, a child of its parent
    assert again == first  # made once per record
    assert second.split("-")[2] != span_id  # and per record
    assert CountingTracer.started == 2
    [line, _] = lines
    assert line["trace_id"] == TRACE_ID
    assert line["span_id"] == span_id
    assert line["session_id"] == "session-1"
    assert line["turn_id"] == "turn-9"  # bound by the handler, over the header's
    assert (line["topic"], line["partition"], line["offset"]) == ("commands", 2, 17)
    # Nothing of a record's context outlives it.
    assert dict(current_log_fields()) == {}
    assert not trace.get_current_span().get_span_context().is_valid


async def test_the_turn_header_reaches_the_log_line(
    tracer: Tracer, lines: list[dict[str, object]]
) -> None:
    async def handler(record: Record) -> None:
        logging.getLogger("test.deferred").info("handling")

    await traced(handler, tracer, consumer_group="g", records_spans=False)(
        _record(("ce_turnid", b"turn-1"))
    )
    [line] = lines
    assert line["turn_id"] == "turn-1"
    assert line["trace_id"] is not None  # a record without a traceparent starts a trace


async def test_a_record_without_traceparent_starts_a_trace(tracer: Tracer) -> None:
    asked: list[str | None] = []

    async def handler(record: Record) -> None:
        asked.append(current_traceparent())

    await traced(handler, tracer, consumer_group="g", records_spans=False)(_record())
    [traceparent] = asked
    assert traceparent is not None
    assert traceparent.split("-")[1] != "0" * 32


async def test_a_span_started_in_the_handler_is_a_child_in_the_same_trace(
    tracer: Tracer,
) -> None:
    inner: list[tuple[int, str | None]] = []

    async def handler(record: Record) -> None:
        with tracer.start_as_current_span("chat") as span:
            inner.append((span.get_span_context().trace_id, current_traceparent()))

    await traced(handler, tracer, consumer_group="g", records_spans=False)(
        _record(("traceparent", PARENT.encode()))
    )
    [(trace_id, traceparent)] = inner
    assert format(trace_id, "032x") == TRACE_ID
    assert traceparent is not None
    assert traceparent.split("-")[1] == TRACE_ID


async def test_a_records_baggage_is_current_and_carried_on(tracer: Tracer) -> None:
    seen: list[tuple[str | None, object, str | None]] = []

    async def handler(record: Record) -> None:
        seen.append((current_baggage(), baggage.get_baggage("tier"), current_traceparent()))

    headers = (("traceparent", PARENT.encode()), ("Baggage", b"tier=gold,experiment=b"))
    await traced(handler, tracer, consumer_group="g", records_spans=False)(_record(*headers))
    [(header, tier, traceparent)] = seen
    assert tier == "gold"
    assert header is not None
    assert set(header.split(",")) == {"tier=gold", "experiment=b"}
    assert traceparent is not None
    assert traceparent.split("-")[1] == TRACE_ID
    assert current_baggage() is None


def test_extract_trace_reads_what_extract_context_reads_but_baggage() -> None:
    headers = [
        ("ce_id", b"x"),
        ("TraceParent", PARENT.encode()),
        ("tracestate", b"vendor=1"),
        ("baggage", b"tier=gold"),
    ]
    full = trace.get_current_span(extract_context(headers)).get_span_context()
    light = trace.get_current_span(extract_trace(headers)).get_span_context()
    assert light == full
    assert light.trace_state.get("vendor") == "1"
    assert baggage.get_all(extract_trace(headers)) == {}
    assert not trace.get_current_span(extract_trace([("traceparent", b"junk")])).is_recording()
    assert not trace.get_current_span(extract_trace([])).get_span_context().is_valid


async def test_a_malformed_tracestate_is_no_endless_recursion(tracer: Tracer) -> None:
    """OpenTelemetry warns about a member of `tracestate` it cannot parse while the record's
    span is made; that line's log fields ask for the span being made. Was a RecursionError:
    the record dead-lettered (a gateway client's header lost its command)."""
    captured: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(json.loads(self.format(record)))

    capture = Capture()
    capture.addFilter(ContextFilter())
    capture.setFormatter(JsonFormatter("svc"))
    otel_logger = logging.getLogger("opentelemetry")
    otel_logger.addHandler(capture)
    asked: list[str | None] = []

    async def handler(record: Record) -> None:
        asked.append(current_traceparent())

    try:
        await traced(handler, tracer, consumer_group="g", records_spans=False)(
            _record(("traceparent", PARENT.encode()), ("tracestate", b"a=" + b"b" * 300))
        )
    finally:
        otel_logger.removeHandler(capture)
    [traceparent] = asked
    assert traceparent is not None
    assert traceparent.split("-")[1] == TRACE_ID  # the trace goes on, without the bad state
    assert captured  # OpenTelemetry's warning was written, without the ids being made
