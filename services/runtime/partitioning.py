"""Where a session lives: every topic is keyed by session id with Kafka's default partitioner."""

import functools
from collections.abc import Callable, Sequence

from aiokafka.partitioner import DefaultPartitioner, murmur2

# Sessions a producer keeps the hash of: a turn publishes ~20 records of one session, and a
# process serves at most a few thousand sessions at once.
_KEYS_KEPT = 16_384


def partition_for(session_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives this key."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(session_id.encode(), every, every))


class SessionPartitioner:
    """Kafka's default partitioner (the Java client's murmur2 of the key), for aiokafka's
    producer, with each key's hash kept: aiokafka's murmur2 is pure Python, 5-8 µs for a
    session id, paid for every record published."""

    def __init__(self, keys: int = _KEYS_KEPT) -> None:
        self._hash: Callable[[bytes], int] = functools.lru_cache(maxsize=keys)(murmur2)
        self._keyless = DefaultPartitioner()

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return int(self._keyless(key, all_partitions, available))
        return all_partitions[(self._hash(key) & 0x7FFFFFFF) % len(all_partitions)]
