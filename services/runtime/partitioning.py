"""Where a session lives: every topic is keyed by session id with Kafka's default partitioner."""

from aiokafka.partitioner import DefaultPartitioner


def partition_for(session_id: str, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives this key."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(session_id.encode(), every, every))
