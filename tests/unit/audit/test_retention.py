import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.retention import MAX_RETENTION_DAYS, RetentionJob
from services.runtime.settings import RuntimeSettings
from services.tool_invocation.settings import ToolInvocationSettings

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


@pytest.mark.parametrize(
    ("settings", "field", "value"),
    [
        (AuditSettings, "audit_retention_days", MAX_RETENTION_DAYS),
        (LLMInvocationSettings, "llm_result_retention_hours", MAX_RETENTION_DAYS * 24),
        (ToolInvocationSettings, "tool_result_retention_hours", MAX_RETENTION_DAYS * 24),
    ],
)
async def test_the_longest_retention_a_setting_takes_runs_and_a_longer_one_is_refused(
    settings: type[RuntimeSettings], field: str, value: int
) -> None:
    # "Keep for ever" as 1e6 days put the cutoff before year 1: every run raised
    # OverflowError; inf or 1e10 stopped the start with a traceback, not a setting error.
    kept = getattr(settings.model_validate({field: value}), field)
    unit = "days" if field.endswith("_days") else "hours"
    log = FakeLog()
    job = RetentionJob(
        "kept", log.purge_recorded_before, retention=timedelta(**{unit: kept}), interval_s=60
    )
    assert await job.run_once() == 3
    for too_long in (value + 1, 1e10, float("inf")):
        with pytest.raises(ValidationError, match=field):
            settings.model_validate({field: too_long})
