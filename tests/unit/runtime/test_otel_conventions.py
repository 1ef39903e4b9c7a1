"""OpenTelemetry by convention: OTEL_* variables, W3C baggage carried with traceparent, no
FastStream telemetry or Prometheus middleware on the subscribers."""

import pytest
from opentelemetry import baggage
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from services.runtime import ServiceRuntime
from services.runtime.record import Record
from services.runtime.settings import RuntimeSettings
from services.runtime.telemetry import tracing
from services.runtime.telemetry.record_span import traced
from services.runtime.telemetry.tracing import configure_tracing, current_baggage

pytestmark = pytest.mark.unit

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def no_global_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    # These providers stay local to the test: no global install, no client instrumentation.
    monkeypatch.setattr(tracing, "_set_global_provider", lambda provider: False)


def test_otel_service_name_and_resource_attributes_win_over_the_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "audit-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,team=ops")
    provider = configure_tracing("audit", environ={})
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "audit-eu"
    assert attributes["deployment.environment"] == "prod"
    assert attributes["team"] == "ops"


def test_without_otel_service_name_the_service_names_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert configure_tracing("audit", environ={}).resource.attributes["service.name"] == "audit"


def test_the_otel_endpoint_variable_turns_export_on_and_the_sampler_is_the_sdks() -> None:
    provider = configure_tracing(
        "audit", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    )
    try:
        assert provider.sampler is not ALWAYS_OFF  # OTEL_TRACES_SAMPLER or parent-based on
    finally:
        provider.shutdown()


def test_no_endpoint_or_sdk_disabled_records_nothing() -> None:
    assert configure_tracing("audit", environ={}).sampler is ALWAYS_OFF
    disabled = configure_tracing(
        "audit",
        otlp_endpoint="http://collector:4318",
        environ={"OTEL_SDK_DISABLED": "true"},
    )
    assert disabled.sampler is ALWAYS_OFF


async def test_a_records_baggage_is_current_in_its_handler_so_publishes_carry_it() -> None:
    seen: list[tuple[str | None, object]] = []

    async def handler(record: Record) -> None:
        seen.append((current_baggage(), baggage.get_baggage("tier")))

    headers = (("traceparent", PARENT.encode()), ("baggage", b"tier=gold,experiment=b"))
    record = Record("commands", 0, 1, b"s-1", b"{}", headers)
    await traced(handler, TracerProvider().get_tracer("t"), consumer_group="g")(record)

    [(header, tier)] = seen
    assert tier == "gold"
    assert header is not None
    assert set(header.split(",")) == {"tier=gold", "experiment=b"}
    assert current_baggage() is None  # detached after the record


def test_publish_headers_carry_the_current_baggage() -> None:
    from opentelemetry import context as otel_context

    from contracts.codec import EncodedRecord

    runtime = ServiceRuntime(
        "svc", RuntimeSettings(), tracer_provider=TracerProvider(), configure_logs=False
    )
    token = otel_context.attach(baggage.set_baggage("tier", "gold"))
    try:
        headers = runtime._headers("t", EncodedRecord(key=b"k", value=b"{}", headers=[]))
    finally:
        otel_context.detach(token)
    named = dict(headers)
    assert named["baggage"] == b"tier=gold"
    assert "traceparent" in named


def test_no_faststream_telemetry_or_prometheus_middleware_on_the_subscribers() -> None:
    runtime = ServiceRuntime(
        "svc", RuntimeSettings(), tracer_provider=TracerProvider(), configure_logs=False
    )

    @runtime.consumer("agent-runtime.commands", group_id="g")
    async def handle(record: Record) -> None:
        pass

    def names(middlewares: object) -> list[str]:
        return [type(m).__name__ if not isinstance(m, type) else m.__name__ for m in middlewares]  # type: ignore[attr-defined]

    found = names(runtime.broker.middlewares)
    for subscriber in runtime.broker.subscribers:
        found += names(getattr(subscriber, "_broker_middlewares", ()))
        found += names(getattr(subscriber, "middlewares", ()))
    assert not [n for n in found if "Telemetry" in n or "Prometheus" in n], found


def test_client_instrumentation_installs_once_and_can_be_removed() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentors = (HTTPXClientInstrumentor(), PymongoInstrumentor())
    assert not any(i.is_instrumented_by_opentelemetry for i in instrumentors)
    try:
        tracing.instrument_clients()
        tracing.instrument_clients()  # a second service runtime in the process: no error
        assert all(i.is_instrumented_by_opentelemetry for i in instrumentors)
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
