import pytest

from services.runtime.offset_tracker import OffsetOrderError, OffsetTracker
from services.runtime.record import PartitionId

pytestmark = pytest.mark.unit

P0 = PartitionId("t", 0)
P1 = PartitionId("t", 1)


def test_nothing_finished_commits_nothing() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 5)
    assert tracker.committable(P0) == 5  # the lowest unfinished: "next to read" stays 5
    assert tracker.to_commit() == {P0: 5}


def test_commit_stops_at_the_lowest_unfinished_record() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        tracker.track(P0, offset)
    for offset in (10, 11, 13, 14):
        tracker.finish(P0, offset)
    assert tracker.committable(P0) == 12
    tracker.finish(P0, 12)
    assert tracker.committable(P0) == 15


def test_gaps_in_offsets_are_skipped_once_everything_before_is_done() -> None:
    tracker = OffsetTracker()
    for offset in (3, 7, 8):  # compaction / transaction markers leave gaps
        tracker.track(P0, offset)
    tracker.finish(P0, 7)
    assert tracker.committable(P0) == 3
    tracker.finish(P0, 3)
    assert tracker.committable(P0) == 8
    tracker.finish(P0, 8)
    assert tracker.committable(P0) == 9


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.track(P1, 0)
    tracker.track(P1, 1)
    tracker.finish(P1, 0)
    tracker.finish(P1, 1)
    assert tracker.to_commit() == {P0: 0, P1: 2}
    assert tracker.in_flight(P0) == 1
    assert tracker.in_flight(P1) == 0


def test_to_commit_reports_only_progress_since_the_last_commit() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.finish(P0, 0)
    tracker.mark_committed({P0: 1})
    assert tracker.to_commit() == {}
    tracker.track(P0, 1)
    assert tracker.to_commit() == {}  # 1 is unfinished: still 1
    tracker.finish(P0, 1)
    assert tracker.to_commit() == {P0: 2}


def test_offsets_must_increase_within_a_partition() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 4)
    with pytest.raises(OffsetOrderError):
        tracker.track(P0, 4)


def test_finish_after_forget_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.forget(P0)
    tracker.finish(P0, 0)
    assert tracker.committable(P0) is None
    assert tracker.partitions == []


def test_finishing_twice_counts_once() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.track(P0, 1)
    tracker.finish(P0, 1)
    tracker.finish(P0, 1)
    assert tracker.in_flight(P0) == 1


def test_commit_lag_counts_received_records_above_the_commit() -> None:
    tracker = OffsetTracker()
    for offset in range(100, 110):
        tracker.track(P0, offset)
    assert tracker.commit_lag(P0) == 10
    for offset in range(100, 104):
        tracker.finish(P0, offset)
    tracker.mark_committed(tracker.to_commit())
    assert tracker.commit_lag(P0) == 6


def test_total_in_flight_counts_every_partitions_unfinished_records() -> None:
    tracker = OffsetTracker()
    for offset in range(3):
        tracker.track(P0, offset)
    tracker.track(P1, 7)
    tracker.finish(P0, 1)
    tracker.finish(P0, 1)  # twice counts once
    assert tracker.total_in_flight == 3
    tracker.forget(P0)  # revoked: its unfinished records are the next owner's
    assert tracker.total_in_flight == 1
    tracker.finish(P0, 0)  # after forget: ignored
    tracker.finish(P1, 7)
    assert tracker.total_in_flight == 0
