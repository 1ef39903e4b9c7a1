"""Per-key FIFO queues: one record per key runs at a time, in arrival (= offset) order.

A key is a session id, so a session's records are handled strictly one after another while
different sessions run concurrently. Records without a key are ordered by their partition.
Keys are not scoped by topic: session-commands reads `commands` and `turns` co-partitioned, and
one session's records from both must not run concurrently (one writer per session).

Pure and synchronous; the consumer owns the tasks that run the heads.
"""

from collections import deque
from collections.abc import Iterable

from services.runtime.record import PartitionId, Record

OrderingKey = bytes | PartitionId


def ordering_key(record: Record) -> OrderingKey:
    return record.key if record.key is not None else record.partition_id


class KeyScheduler:
    def __init__(self) -> None:
        # The head of each queue is the record being handled for that key.
        self._queues: dict[OrderingKey, deque[Record]] = {}

    def submit(self, record: Record) -> bool:
        """Queue `record`; True when its key was idle, i.e. the caller must start the key."""
        key = ordering_key(record)
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque([record])
            return True
        queue.append(record)
        return False

    def head(self, key: OrderingKey) -> Record | None:
        queue = self._queues.get(key)
        return queue[0] if queue else None

    def complete(self, key: OrderingKey) -> Record | None:
        """The head is finished: drop it and return the next record of the key, if any."""
        queue = self._queues.get(key)
        if not queue:
            return None
        queue.popleft()
        if not queue:
            del self._queues[key]
            return None
        return queue[0]

    def release(self, key: OrderingKey) -> list[Record]:
        """Stop the key (shutdown): forget its queue; returns the records never started."""
        queue = self._queues.pop(key, None)
        return list(queue)[1:] if queue else []

    def drop_waiting(self, partitions: Iterable[PartitionId]) -> list[Record]:
        """Remove not-yet-started records of revoked partitions; running heads stay."""
        revoked = set(partitions)
        dropped: list[Record] = []
        for queue in self._queues.values():
            head, *rest = queue
            kept = [r for r in rest if r.partition_id not in revoked]
            if len(kept) != len(rest):
                dropped.extend(r for r in rest if r.partition_id in revoked)
                queue.clear()
                queue.append(head)
                queue.extend(kept)
        return dropped

    def depth(self, key: OrderingKey) -> int:
        queue = self._queues.get(key)
        return len(queue) if queue else 0

    def max_depth(self) -> int:
        return max((len(q) for q in self._queues.values()), default=0)

    @property
    def active_keys(self) -> int:
        return len(self._queues)

    @property
    def queued(self) -> int:
        """Records held: running heads plus those waiting behind them."""
        return sum(len(q) for q in self._queues.values())
