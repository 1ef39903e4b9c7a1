"""Which offset of each partition may be committed: the lowest one not yet finished.

Records finish out of order (different keys run concurrently), but a Kafka commit is one
number per partition meaning "everything below is done". So the committable offset is the
first record still unfinished, or one past the last received record when all are finished.
Committing anything higher would lose the unfinished record on a crash.

Pure and synchronous: no I/O, no clock. The consumer calls it from one event loop.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

from services.runtime.record import PartitionId


class OffsetOrderError(ValueError):
    """Offsets of one partition must be registered in increasing order."""


@dataclass(slots=True)
class _PartitionOffsets:
    # Offset → finished? Insertion order is offset order (enforced by `track`).
    pending: "OrderedDict[int, bool]" = field(default_factory=OrderedDict)
    next_offset: int | None = None  # one past the highest contiguous finished offset
    highest_received: int | None = None
    first_received: int | None = None
    committed: int | None = None
    unfinished: int = 0

    def advance(self) -> None:
        while self.pending:
            offset, finished = next(iter(self.pending.items()))
            if not finished:
                return
            self.pending.popitem(last=False)
            self.next_offset = offset + 1


class OffsetTracker:
    def __init__(self) -> None:
        self._partitions: dict[PartitionId, _PartitionOffsets] = {}
        self._unfinished = 0  # over all partitions: read on every record, not summed each time

    def track(self, partition: PartitionId, offset: int) -> None:
        """A record was received and is now in flight."""
        state = self._partitions.setdefault(partition, _PartitionOffsets())
        if state.highest_received is not None and offset <= state.highest_received:
            raise OffsetOrderError(
                f"{partition}: offset {offset} after {state.highest_received} (not increasing)"
            )
        if state.first_received is None:
            state.first_received = offset
        state.highest_received = offset
        state.pending[offset] = False
        state.unfinished += 1
        self._unfinished += 1

    def finish(self, partition: PartitionId, offset: int) -> None:
        """The record's effects are durable (handled or dead-lettered)."""
        state = self._partitions.get(partition)
        if state is None or state.pending.get(offset, True):
            return  # revoked meanwhile (the new owner re-handles it), or finished already
        state.pending[offset] = True
        state.unfinished -= 1
        self._unfinished -= 1
        state.advance()

    def pass_to(self, partition: PartitionId, offset: int) -> None:
        """The consumer's position is `offset` and every record below it was received: with
        nothing unfinished, the offsets up to it hold no record for this consumer
        (transaction markers, aborted records), and the commit may pass them."""
        state = self._partitions.setdefault(partition, _PartitionOffsets())
        if state.pending:
            return
        if state.next_offset is None or offset > state.next_offset:
            state.next_offset = offset

    def committable(self, partition: PartitionId) -> int | None:
        """The offset to commit (Kafka's "next record to read"), or None if nothing finished."""
        state = self._partitions.get(partition)
        if state is None:
            return None
        if state.pending:
            return next(iter(state.pending))  # the lowest unfinished
        return state.next_offset

    def to_commit(self) -> dict[PartitionId, int]:
        """Committable offsets that moved past the last committed one."""
        result: dict[PartitionId, int] = {}
        for partition, state in self._partitions.items():
            offset = self.committable(partition)
            if offset is not None and (state.committed is None or offset > state.committed):
                result[partition] = offset
        return result

    def mark_committed(self, offsets: dict[PartitionId, int]) -> None:
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is not None and (state.committed is None or offset > state.committed):
                state.committed = offset

    def in_flight(self, partition: PartitionId) -> int:
        state = self._partitions.get(partition)
        return 0 if state is None else state.unfinished

    @property
    def total_in_flight(self) -> int:
        """Unfinished records of all partitions."""
        return self._unfinished

    def commit_lag(self, partition: PartitionId) -> int:
        """Received records above the last commit: what a crash now would re-deliver."""
        state = self._partitions.get(partition)
        if state is None or state.highest_received is None or state.first_received is None:
            return 0
        base = state.committed if state.committed is not None else state.first_received
        return max(0, state.highest_received + 1 - base)

    def forget(self, partition: PartitionId) -> None:
        """The partition was revoked: its unfinished records belong to the next owner."""
        state = self._partitions.pop(partition, None)
        if state is not None:
            self._unfinished -= state.unfinished

    @property
    def partitions(self) -> list[PartitionId]:
        return list(self._partitions)
