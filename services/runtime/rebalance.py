"""Bridges aiokafka's rebalance callbacks to the key-ordered consumer.

aiokafka awaits `on_partitions_revoked` before it rejoins the group (eager rebalancing), and
the assignment is still valid then, so finishing and committing the revoked partitions' work
inside the callback is what keeps a handover free of loss and of needless duplicates.
"""

from collections.abc import Iterable
from typing import Any

from aiokafka import ConsumerRebalanceListener

from services.runtime.keyed_consumer import KeyOrderedConsumer
from services.runtime.record import PartitionId


def _ids(partitions: Iterable[Any]) -> list[PartitionId]:
    return [PartitionId(tp.topic, tp.partition) for tp in partitions]


class DrainingRebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: KeyOrderedConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self._consumer.on_partitions_revoked(_ids(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        # Must not await before updating the assignment: see KeyOrderedConsumer.dispatch.
        self._consumer.on_partitions_assigned(_ids(assigned))
