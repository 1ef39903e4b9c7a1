"""The producer's partitioner puts every key where Kafka's default partitioner does: a session's
records of every producer (gateway, services, other clients) meet on one partition."""

import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.runtime.partitioning import SessionPartitioner, partition_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("partitions", [1, 3, 12, 50])
def test_every_key_lands_where_the_default_partitioner_puts_it(partitions: int) -> None:
    every = list(range(partitions))
    ours = SessionPartitioner(keys=8)  # a small cache: most keys are hashed again
    keys = [f"session-{i}".encode() for i in range(200)] + [b"", b"\xff\x00", "é".encode()]
    for _ in range(2):  # hashed, then (the last few) from the cache
        for key in keys:
            assert ours(key, every, every) == DefaultPartitioner()(key, every, every)
    assert ours(b"s-7", every, every) == partition_for("s-7", partitions)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert SessionPartitioner()(None, [0, 1, 2, 3], [2]) == 2
