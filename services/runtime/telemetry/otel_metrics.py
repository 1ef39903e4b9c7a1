"""The OpenTelemetry meter provider: OTLP/HTTP export when configured, console for local runs.

Prometheus scrapes the same figures from /metrics (prometheus-client), so a deployment picks
either pipeline without code changes.
"""

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

EXPORT_INTERVAL_MS = 15_000


def configure_meter_provider(
    service: str, *, otlp_endpoint: str | None = None, console: bool = False
) -> MeterProvider:
    readers: list[MetricReader] = []
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/metrics")
        readers.append(
            PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)
        )
    if console:
        readers.append(
            PeriodicExportingMetricReader(
                ConsoleMetricExporter(), export_interval_millis=EXPORT_INTERVAL_MS
            )
        )
    return MeterProvider(
        metric_readers=readers, resource=Resource.create({"service.name": service})
    )
