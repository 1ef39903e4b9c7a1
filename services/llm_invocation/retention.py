"""The retention job of kept results: deletes those older than the retention period.

Kept results only matter while their request can still be redelivered, i.e. while it is on
the llm-requests topic (3 days by default), so that is the default retention. Every instance
runs the job; deleting by a cutoff is idempotent.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from contracts.base import utc_now
from services.runtime.periodic import PeriodicJob

log = logging.getLogger(__name__)


class ExpiringResults(Protocol):
    async def delete_kept_before(self, cutoff: datetime) -> int: ...


class ResultRetentionJob:
    def __init__(
        self,
        results: ExpiringResults,
        *,
        retention: timedelta,
        interval_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._results = results
        self._retention = retention
        self._clock = clock
        self._schedule = PeriodicJob(
            "llm_results retention run", self.run_once, interval_s=interval_s, log=log
        )

    async def run_once(self) -> int:
        cutoff = self._clock() - self._retention
        deleted = await self._results.delete_kept_before(cutoff)
        if deleted:
            log.info("llm_results retention: %d result(s) kept before %s deleted", deleted, cutoff)
        return deleted

    async def start(self) -> None:
        await self._schedule.start()

    async def stop(self) -> None:
        await self._schedule.stop()
