"""Consumer metrics, in Prometheus (scraped from /metrics): the one metrics path.

OpenTelemetry is used for traces only; a collector that wants these figures scrapes /metrics
(deploy/kubernetes/otel-collector.yaml), so no figure is kept twice.

Names (Prometheus): agent_runtime_records_processed_total, _records_skipped_total,
_records_failed_total{retryable},
_records_dead_lettered_total, _records_in_flight, _key_queue_depth_max, _active_keys,
_commit_lag{topic,partition}, _consumer_lag_records{topic,partition} (broker high-water mark
minus the committed offset), _handler_seconds (histogram). Labels: service, group, topic.
"""

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.runtime.record import PartitionId, Record

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RuntimeMetrics:
    """One per process; `for_consumer` gives a `ConsumerMetrics` bound to a consumer group."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.registry = registry
        labels = ["service", "group", "topic"]
        self.processed = Counter(
            "agent_runtime_records_processed",
            "Records handled successfully",
            labels,
            registry=registry,
        )
        self.skipped = Counter(
            "agent_runtime_records_skipped",
            "Records the consumer has nothing to do with (told from their headers): done at once",
            labels,
            registry=registry,
        )
        self.failed = Counter(
            "agent_runtime_records_failed",
            "Handler failures (each attempt)",
            [*labels, "retryable"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "agent_runtime_records_dead_lettered",
            "Records sent to the dead-letter topic",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "agent_runtime_handler_seconds",
            "Handler latency of successful records",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "agent_runtime_records_in_flight",
            "Records received and not finished",
            ["service", "group"],
            registry=registry,
        )
        self.key_depth = Gauge(
            "agent_runtime_key_queue_depth_max",
            "Longest per-key queue (running + waiting)",
            ["service", "group"],
            registry=registry,
        )
        self.active_keys = Gauge(
            "agent_runtime_active_keys",
            "Keys with records in flight",
            ["service", "group"],
            registry=registry,
        )
        self.commit_lag = Gauge(
            "agent_runtime_commit_lag",
            "Received records above the committed offset",
            ["service", "group", "topic", "partition"],
            registry=registry,
        )

        self.consumer_lag = Gauge(
            "agent_runtime_consumer_lag_records",
            "Records on the broker past the group's committed offset (high-water mark - commit)",
            ["service", "group", "topic", "partition"],
            registry=registry,
        )

    def for_consumer(self, group: str) -> "GroupMetrics":
        return GroupMetrics(self, group)


class GroupMetrics:
    def __init__(self, metrics: RuntimeMetrics, group: str) -> None:
        self._m = metrics
        self._group = group
        # The labelled series of each topic, looked up once: `labels()` per record (sorting
        # and checking the label values, taking the metric's lock) cost more than the counting.
        self._handled: dict[str, tuple[Counter, Histogram]] = {}
        self._skipped: dict[str, Counter] = {}

    def _labels(self, record: Record) -> dict[str, str]:
        return {"service": self._m.service, "group": self._group, "topic": record.topic}

    def processed(self, record: Record, seconds: float) -> None:
        series = self._handled.get(record.topic)
        if series is None:
            labels = self._labels(record)
            series = self._m.processed.labels(**labels), self._m.latency.labels(**labels)
            self._handled[record.topic] = series
        series[0].inc()
        series[1].observe(seconds)

    def skipped(self, record: Record) -> None:
        series = self._skipped.get(record.topic)
        if series is None:
            series = self._skipped[record.topic] = self._m.skipped.labels(**self._labels(record))
        series.inc()

    def failed(self, record: Record, error: BaseException, *, retryable: bool) -> None:
        labels = self._labels(record)
        self._m.failed.labels(**labels, retryable=str(retryable).lower()).inc()

    def dead_lettered(self, record: Record) -> None:
        labels = self._labels(record)
        self._m.dead_lettered.labels(**labels).inc()

    def gauges(self, *, in_flight: int, max_key_depth: int, active_keys: int) -> None:
        labels = {"service": self._m.service, "group": self._group}
        self._m.in_flight.labels(**labels).set(in_flight)
        self._m.key_depth.labels(**labels).set(max_key_depth)
        self._m.active_keys.labels(**labels).set(active_keys)

    def commit_lag(self, partition: PartitionId, lag: int) -> None:
        self._m.commit_lag.labels(
            service=self._m.service,
            group=self._group,
            topic=partition.topic,
            partition=str(partition.partition),
        ).set(lag)

    def consumer_lag(self, partition: PartitionId, lag: int) -> None:
        self._m.consumer_lag.labels(*self._partition_labels(partition)).set(lag)

    def partition_revoked(self, partition: PartitionId) -> None:
        """Another instance reports the partition now: drop its series here."""
        labels = self._partition_labels(partition)
        for gauge in (self._m.commit_lag, self._m.consumer_lag):
            with contextlib.suppress(KeyError):  # never reported by this instance
                gauge.remove(*labels)

    def _partition_labels(self, partition: PartitionId) -> tuple[str, str, str, str]:
        return (self._m.service, self._group, partition.topic, str(partition.partition))
