"""Bridges aiokafka's rebalance callbacks to the key-ordered consumer.

aiokafka awaits `on_partitions_revoked` before it rejoins the group (eager rebalancing), and
the assignment is still valid then, so finishing and committing the revoked partitions' work
inside the callback is what keeps a handover free of loss and of needless duplicates.

Every assignment after an instance's first one is a rebalance of its group: the listener then
calls `on_rebalanced` with what the instance holds now (the service writes it as one INFO line;
the first assignment is announced by the ready line instead).
"""

from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import ConsumerRebalanceListener

from services.runtime.keyed_consumer import KeyOrderedConsumer
from services.runtime.record import PartitionId


def _ids(partitions: Iterable[Any]) -> list[PartitionId]:
    return [PartitionId(tp.topic, tp.partition) for tp in partitions]


class DrainingRebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        consumer: KeyOrderedConsumer,
        on_rebalanced: Callable[[list[PartitionId]], None] | None = None,
    ) -> None:
        self._consumer = consumer
        self._on_rebalanced = on_rebalanced
        self._assignments = 0

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._consumer.on_partitions_revoked(_ids(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        # Must not await before updating the assignment: see KeyOrderedConsumer.dispatch.
        partitions = _ids(assigned)
        self._consumer.on_partitions_assigned(partitions)
        self._assignments += 1
        if self._assignments > 1 and self._on_rebalanced is not None:
            self._on_rebalanced(partitions)
