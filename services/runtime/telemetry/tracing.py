"""OpenTelemetry tracing: W3C traceparent in Kafka headers, one span per handled record.

The span of a handled record is the child of the span that published it (its `traceparent`
header), so one user turn is one trace from the upstream command to the audit record.
Publishes inside a handler run under that span; `current_traceparent()` gives it to the code
that encodes the headers (contracts.codec.encode(traceparent=...)), and the runtime's publish
adds it to a record that has none.

Without an exporter, spans are not recorded (sampler ALWAYS_OFF): they still get their ids,
so `traceparent` propagation and the log lines' trace_id/span_id are unchanged, but nothing
is built or kept per span.
"""

import re
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class _HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key.lower()]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


def extract_context(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context:
    return _PROPAGATOR.extract(headers, getter=_GETTER)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, for headers encoded by hand."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


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
) -> TracerProvider:
    """Build the service's tracer provider and install it globally (once per process)."""
    processors = list(extra_processors)
    exported = bool(otlp_endpoint or console or processors)
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=None
        if exported
        else ALWAYS_OFF,  # None: the SDK's default (or OTEL_TRACES_SAMPLER)
    )
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    for processor in processors:
        provider.add_span_processor(processor)
    _set_global_provider(provider)
    return provider


def _set_global_provider(provider: TracerProvider) -> None:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return  # already set in this process (OTel allows it once); keep the first
    trace.set_tracer_provider(provider)
