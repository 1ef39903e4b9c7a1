"""OpenTelemetry tracing: W3C traceparent and baggage in Kafka headers, one span per handled
record.

The span of a handled record is the child of the span that published it (its `traceparent`
header), so one user turn is one trace from the upstream command to the audit record.
Publishes inside a handler run under that span; `current_traceparent()` gives it to the code
that encodes the headers (contracts.codec.encode(traceparent=...)), and the runtime's publish
adds it to a record that has none.

Without an exporter, spans are not recorded (sampler ALWAYS_OFF): they still get their ids,
so `traceparent` propagation and the log lines' trace_id/span_id are unchanged, but nothing
is built or kept per span.
"""

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()
# What a record's headers give its handler span: the trace, and W3C baggage (key=value pairs
# the caller wants carried along the whole turn, e.g. a tenant tier or an experiment).
_INCOMING = CompositePropagator([_PROPAGATOR, _BAGGAGE])
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key.lower()]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


def extract_context(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context:
    """The trace and the baggage of a record (its `traceparent` and `baggage` headers)."""
    return _INCOMING.extract(headers, getter=_GETTER)


def extract_trace(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context:
    """The trace of a record alone (its `traceparent` and `tracestate`, no baggage), read in
    one pass over the headers: what `extract_context` gives, less its baggage, at a third of
    its cost (the generic getter scans every header once per field it looks for)."""
    carrier: dict[str, list[str]] = {}
    for name, value in headers:
        field = name.lower()
        if field in _TRACE_FIELDS:
            carrier.setdefault(field, []).append(value.decode("latin-1"))
    if not carrier:
        return otel_context.Context()
    return _PROPAGATOR.extract(carrier, context=otel_context.Context())


_TRACE_FIELDS: Final = frozenset(_PROPAGATOR.fields)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, for headers encoded by hand."""
    span = trace.get_current_span()
    if isinstance(span, DeferredSpan):
        return span.traceparent()
    return _traceparent_of(span)


def _traceparent_of(span: trace.Span) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


class DeferredSpan(trace.NonRecordingSpan):
    """An unrecorded span whose ids are made the first time they are asked for (a handled
    record's, record_span.py), and its `traceparent` formatted once: a handler asks for it for
    every record it publishes."""

    def __init__(self, make: Callable[[], trace.Span]) -> None:
        self._make: Callable[[], trace.Span] | None = make
        self._made: trace.SpanContext | None = None
        self._traceparent: str | None = None

    def get_span_context(self) -> trace.SpanContext:
        if self._made is None:
            make, self._make = self._make, None
            if make is None:
                # Asked again while it is being made: a line logged meanwhile (OpenTelemetry
                # warns about a record's malformed `tracestate`) reads the current trace ids,
                # which made it again, without end (a RecursionError that dead-lettered the
                # record). That line goes without them.
                return trace.INVALID_SPAN_CONTEXT
            self._made = make().get_span_context()
        return self._made

    def traceparent(self) -> str | None:
        if self._traceparent is None:
            self._traceparent = _traceparent_of(self)
        return self._traceparent

    def __repr__(self) -> str:
        return f"DeferredSpan({self._made!r})"


def current_baggage() -> str | None:
    """The W3C `baggage` header of the active context (None when it carries none), so that
    what a handler publishes carries its record's baggage on, beside `traceparent`."""
    carrier: dict[str, str] = {}
    _BAGGAGE.inject(carrier)
    return carrier.get("baggage")


def valid_traceparent(value: str | None) -> str | None:
    """`value` when it has the W3C traceparent form, else None (a header from outside may hold
    anything, of any size)."""
    if value is None or _TRACEPARENT.match(value) is None:
        return None
    return value


def configure_tracing(
    service: str,
    *,
    otlp_endpoint: str | None = None,
    console: bool = False,
    extra_processors: Iterable[Any] = (),
    environ: Mapping[str, str] = os.environ,
) -> TracerProvider:
    """Build the service's tracer provider and install it globally (once per process).

    OpenTelemetry's own variables are honoured, by the SDK where it reads them itself:
    `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (over the service's name),
    `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (and their `_HEADERS`,
    `_TIMEOUT`, ...) when `AGENT_RUNTIME_OTLP_ENDPOINT` is not set, `OTEL_TRACES_SAMPLER` /
    `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SDK_DISABLED=true` (nothing exported).
    """
    processors = list(extra_processors)
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    otel_endpoint = any(environ.get(name) for name in _OTLP_ENDPOINT_VARIABLES)
    otlp = not disabled and bool(otlp_endpoint or otel_endpoint)
    exported = otlp or (not disabled and (console or bool(processors)))
    provider = TracerProvider(
        resource=_resource(service),
        # None: the SDK's default, parent-based always-on, or OTEL_TRACES_SAMPLER(_ARG).
        sampler=None if exported else ALWAYS_OFF,
    )
    if otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Without an endpoint argument the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT.
        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces" if otlp_endpoint else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console and not disabled:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    for processor in processors:
        provider.add_span_processor(processor)
    if _set_global_provider(provider) and exported:
        # Client spans of HTTP calls (the LLM provider) and MongoDB commands. Only when spans
        # are exported: unexported, they would be per-call work for nothing.
        instrument_clients()
    return provider


def records_spans(provider: TracerProvider) -> bool:
    """False when the provider samples nothing (no exporter, or `OTEL_TRACES_SAMPLER=always_off`):
    the runtime then makes a record's unrecorded span only when something asks for its ids
    (record_span.py)."""
    return provider.sampler is not ALWAYS_OFF


_OTLP_ENDPOINT_VARIABLES: Final = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def _resource(service: str) -> Resource:
    # Resource.create() applies OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, but lets the
    # attributes given to it win; merging the environment's again on top makes them win.
    return Resource.create({"service.name": service}).merge(OTELResourceDetector().detect())


def instrument_clients() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), PymongoInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def _set_global_provider(provider: TracerProvider) -> bool:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return False  # already set in this process (OTel allows it once); keep the first
    trace.set_tracer_provider(provider)
    return True
