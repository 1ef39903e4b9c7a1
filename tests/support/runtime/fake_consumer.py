"""A stand-in for the aiokafka consumer: records pauses and exact commits."""

from dataclasses import dataclass, field
from typing import Any

from services.runtime.record import PartitionId


@dataclass
class FakeKafkaConsumer:
    assigned: set[PartitionId] = field(default_factory=set)
    paused: set[PartitionId] = field(default_factory=set)
    commits: list[dict[PartitionId, int]] = field(default_factory=list)
    fail_commits: bool = False
    highwaters: dict[PartitionId, int] = field(default_factory=dict)
    positions: dict[PartitionId, int] = field(default_factory=dict)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def pause(self, *partitions: Any) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: Any) -> None:
        self.paused -= set(partitions)

    async def commit(self, offsets: dict[Any, int]) -> None:
        if self.fail_commits:
            raise RuntimeError("CommitFailedError: group rebalanced")
        self.commits.append(dict(offsets))

    def highwater(self, partition: Any) -> int | None:
        return self.highwaters.get(partition)

    async def position(self, partition: Any) -> int:
        return self.positions.get(partition, 0)

    def committed(self, partition: PartitionId) -> int | None:
        for commit in reversed(self.commits):
            if partition in commit:
                return commit[partition]
        return None
