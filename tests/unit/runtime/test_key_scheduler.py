import pytest

from services.runtime.key_scheduler import KeyScheduler, ordering_key
from services.runtime.record import PartitionId, Record

pytestmark = pytest.mark.unit


def rec(key: bytes | None, offset: int, topic: str = "t", partition: int = 0) -> Record:
    return Record(topic=topic, partition=partition, offset=offset, key=key, value=b"")


def test_first_record_of_a_key_starts_it_and_later_ones_wait() -> None:
    scheduler = KeyScheduler()
    assert scheduler.submit(rec(b"a", 0)) is True
    assert scheduler.submit(rec(b"a", 1)) is False
    assert scheduler.submit(rec(b"b", 2)) is True
    assert scheduler.depth(b"a") == 2
    assert scheduler.active_keys == 2


def test_complete_hands_out_the_key_records_in_arrival_order() -> None:
    scheduler = KeyScheduler()
    for offset in range(3):
        scheduler.submit(rec(b"a", offset))
    assert scheduler.head(b"a") == rec(b"a", 0)
    assert scheduler.complete(b"a") == rec(b"a", 1)
    assert scheduler.complete(b"a") == rec(b"a", 2)
    assert scheduler.complete(b"a") is None
    assert scheduler.active_keys == 0
    assert scheduler.submit(rec(b"a", 3)) is True  # idle again


def test_records_without_key_are_ordered_per_partition() -> None:
    assert ordering_key(rec(None, 0, partition=3)) == PartitionId("t", 3)
    scheduler = KeyScheduler()
    assert scheduler.submit(rec(None, 0, partition=3)) is True
    assert scheduler.submit(rec(None, 1, partition=3)) is False
    assert scheduler.submit(rec(None, 0, partition=4)) is True


def test_same_key_on_two_topics_shares_one_queue() -> None:
    scheduler = KeyScheduler()
    assert scheduler.submit(rec(b"s", 0, topic="commands")) is True
    assert scheduler.submit(rec(b"s", 0, topic="turns")) is False


def test_drop_waiting_removes_only_not_started_records_of_revoked_partitions() -> None:
    scheduler = KeyScheduler()
    scheduler.submit(rec(b"s", 0, topic="commands"))  # running head, revoked partition
    scheduler.submit(rec(b"s", 5, topic="turns"))  # waiting, kept partition
    scheduler.submit(rec(b"s", 1, topic="commands"))  # waiting, revoked partition
    dropped = scheduler.drop_waiting([PartitionId("commands", 0)])
    assert dropped == [rec(b"s", 1, topic="commands")]
    assert scheduler.head(b"s") == rec(b"s", 0, topic="commands")
    assert scheduler.complete(b"s") == rec(b"s", 5, topic="turns")
    assert scheduler.complete(b"s") is None


def test_release_forgets_the_key() -> None:
    scheduler = KeyScheduler()
    for offset in range(3):
        scheduler.submit(rec(b"a", offset))
    assert scheduler.release(b"a") == [rec(b"a", 1), rec(b"a", 2)]
    assert scheduler.queued == 0
