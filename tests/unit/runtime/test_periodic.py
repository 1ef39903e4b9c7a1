import asyncio
import logging

import pytest

from services.runtime.periodic import PeriodicJob

pytestmark = pytest.mark.unit


class Passes:
    """A run_once that fails on the passes listed in `failing` and counts every pass."""

    def __init__(self, *, failing: frozenset[int] = frozenset()) -> None:
        self.count = 0
        self._failing = failing
        self.reached = asyncio.Event()
        self.wanted = 1

    async def __call__(self) -> None:
        self.count += 1
        if self.count >= self.wanted:
            self.reached.set()
        if self.count in self._failing:
            raise RuntimeError(f"pass {self.count} failed")


async def test_the_first_pass_runs_at_start_and_none_after_stop() -> None:
    passes = Passes()
    job = PeriodicJob("one pass", passes, interval_s=3_600)
    await job.start()
    await job.start()  # a second start is a no-op, not a second loop
    await asyncio.wait_for(passes.reached.wait(), 5)
    await job.stop()
    await job.stop()
    assert passes.count == 1


async def test_a_failing_pass_is_logged_and_the_job_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes = Passes(failing=frozenset({1, 2}))
    passes.wanted = 3
    job = PeriodicJob("flaky pass", passes, interval_s=0.001, log=logging.getLogger("flaky-job"))
    with caplog.at_level(logging.ERROR, logger="flaky-job"):
        await job.start()
        await asyncio.wait_for(passes.reached.wait(), 5)
        await job.stop()
    failures = [r for r in caplog.records if r.name == "flaky-job"]
    assert [r.getMessage() for r in failures] == ["flaky pass failed"] * 2
    assert all(r.exc_info is not None for r in failures)


async def test_it_can_start_again_after_a_stop() -> None:
    passes = Passes()
    job = PeriodicJob("restartable", passes, interval_s=3_600)
    await job.start()
    await asyncio.wait_for(passes.reached.wait(), 5)
    await job.stop()
    passes.wanted = 2
    passes.reached.clear()
    await job.start()
    await asyncio.wait_for(passes.reached.wait(), 5)
    await job.stop()
    assert passes.count == 2


async def test_a_pass_whose_driver_turns_the_cancel_into_an_error_still_stops() -> None:
    """pymongo can answer a cancelled operation with an ordinary error: the loop logged it and
    slept a whole interval (an hour), holding the shutdown that stopped it."""
    started = asyncio.Event()

    async def swallowing_pass() -> None:
        started.set()
        try:
            await asyncio.sleep(3_600)
        except asyncio.CancelledError:
            raise RuntimeError("operation cancelled") from None

    job = PeriodicJob("swallowing pass", swallowing_pass, interval_s=3_600)
    await job.start()
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(job.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert stopping in done, "stop() still waits for the job's next pass"
