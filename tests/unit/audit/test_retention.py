import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.runtime.retention import RetentionJob

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, tzinfo=UTC)


class FakeLog:
    def __init__(self) -> None:
        self.cutoffs: list[datetime] = []

    async def purge_recorded_before(self, cutoff: datetime) -> int:
        self.cutoffs.append(cutoff)
        return 3


async def test_one_run_purges_everything_recorded_before_now_minus_retention() -> None:
    log = FakeLog()
    job = RetentionJob(
        "audit log",
        log.purge_recorded_before,
        retention=timedelta(days=30),
        interval_s=60,
        clock=lambda: NOW,
    )
    assert await job.run_once() == 3
    assert log.cutoffs == [NOW - timedelta(days=30)]


async def test_the_job_runs_at_start_and_stops_cleanly() -> None:
    log = FakeLog()
    job = RetentionJob(
        "audit log",
        log.purge_recorded_before,
        retention=timedelta(days=1),
        interval_s=3600,
        clock=lambda: NOW,
    )
    await job.start()
    for _ in range(100):
        if log.cutoffs:
            break
        await asyncio.sleep(0.01)
    await job.stop()
    assert log.cutoffs == [NOW - timedelta(days=1)]
