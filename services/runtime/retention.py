"""The retention job every service with retained data runs: delete what is older than a period.

An application job rather than a TTL index: the Mongo-compatible server used without Docker
ignores TTL indexes, and a job makes the period a setting that can change without rebuilding an
index. Every instance runs it; deleting by a cutoff is idempotent, so instances running it
concurrently only repeat each other's work.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from contracts.base import utc_now
from services.runtime.periodic import PeriodicJob

log = logging.getLogger(__name__)

MAX_RETENTION_DAYS: Final = 36_500
"""The longest retention a setting takes: a century, i.e. "keep for ever". A longer one put the
cutoff before year 1, which a datetime cannot hold: every run failed with OverflowError, and
`inf` or 1e10 days stopped the service's start with a traceback instead of naming the setting."""

Purge = Callable[[datetime], Awaitable[int]]
"""Delete everything kept before the cutoff; returns how many were deleted."""


class RetentionJob:
    def __init__(
        self,
        what: str,
        purge: Purge,
        *,
        retention: timedelta,
        interval_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._what = what
        self._purge = purge
        self._retention = retention
        self._clock = clock
        self._schedule = PeriodicJob(
            f"{what} retention run", self.run_once, interval_s=interval_s, log=log
        )

    async def run_once(self) -> int:
        cutoff = self._clock() - self._retention
        deleted = await self._purge(cutoff)
        if deleted:
            log.info("%s retention: %d kept before %s deleted", self._what, deleted, cutoff)
        return deleted

    async def start(self) -> None:
        await self._schedule.start()

    async def stop(self) -> None:
        await self._schedule.stop()
