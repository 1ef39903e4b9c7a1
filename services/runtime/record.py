"""The record a handler receives: a Kafka record in plain, typed, immutable form."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class PartitionId:
    """Hashable (topic, partition); the unit of ownership and of commits."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    @property
    def partition_id(self) -> PartitionId:
        return PartitionId(self.topic, self.partition)

    @property
    def session_id(self) -> str | None:
        """The key as text: every topic is keyed by session id."""
        return None if self.key is None else self.key.decode("utf-8", errors="replace")

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (Kafka allows repeats; the last one wins)."""
        found: bytes | None = None
        for header_name, value in self.headers:
            if header_name == name:
                found = value
        return found

    def header_text(self, name: str) -> str | None:
        value = self.header(name)
        return None if value is None else value.decode("utf-8", errors="replace")

    @classmethod
    def from_consumer_record(cls, raw: Any) -> "Record":
        """Build from an `aiokafka.ConsumerRecord` (typed `Any`: aiokafka ships no stubs)."""
        headers: Sequence[tuple[str, bytes]] = raw.headers or ()
        return cls(
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
            key=raw.key,
            value=raw.value,
            headers=_as_bytes(headers),
            timestamp_ms=raw.timestamp,
        )


def _as_bytes(headers: Sequence[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    # Every record of every fetch passes here: the pairs are copied only when a value is not
    # bytes already (a null header value, a memoryview), not rebuilt one by one each time.
    for _, value in headers:
        if value.__class__ is not bytes:
            return tuple((name, bytes(value or b"")) for name, value in headers)
    return tuple(headers)
