"""What the key-ordered consumer reports; the telemetry package implements it."""

from typing import Protocol

from services.runtime.record import PartitionId, Record


class ConsumerMetrics(Protocol):
    def processed(self, record: Record, seconds: float) -> None: ...
    def skipped(self, record: Record) -> None:
        """Done at once: the consumer's `accepts` filter refused it (no handler ran)."""
    def failed(self, record: Record, error: BaseException, *, retryable: bool) -> None: ...
    def dead_lettered(self, record: Record) -> None: ...
    def gauges(self, *, in_flight: int, max_key_depth: int, active_keys: int) -> None: ...
    def commit_lag(self, partition: PartitionId, lag: int) -> None: ...
    def consumer_lag(self, partition: PartitionId, lag: int) -> None: ...
    def partition_revoked(self, partition: PartitionId) -> None: ...


class NoMetrics:
    def processed(self, record: Record, seconds: float) -> None:
        pass

    def skipped(self, record: Record) -> None:
        pass

    def failed(self, record: Record, error: BaseException, *, retryable: bool) -> None:
        pass

    def dead_lettered(self, record: Record) -> None:
        pass

    def gauges(self, *, in_flight: int, max_key_depth: int, active_keys: int) -> None:
        pass

    def commit_lag(self, partition: PartitionId, lag: int) -> None:
        pass

    def consumer_lag(self, partition: PartitionId, lag: int) -> None:
        pass

    def partition_revoked(self, partition: PartitionId) -> None:
        pass
