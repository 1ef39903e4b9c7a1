"""The retention job: drops audit log records older than the retention period.

An application job rather than a TTL index: the Mongo-compatible server used without Docker
ignores TTL indexes, and a job makes the period a setting that can change without rebuilding
an index. Every audit instance runs it; deleting by a cutoff is idempotent, so instances
running it concurrently only repeat each other's work.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from contracts.base import utc_now
from services.runtime.periodic import PeriodicJob

log = logging.getLogger(__name__)


class PurgeableLog(Protocol):
    async def purge_recorded_before(self, cutoff: datetime) -> int: ...


class RetentionJob:
    def __init__(
        self,
        log_store: PurgeableLog,
        *,
        retention: timedelta,
        interval_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._log = log_store
        self._retention = retention
        self._clock = clock
        self._schedule = PeriodicJob(
            "audit retention run", self.run_once, interval_s=interval_s, log=log
        )

    async def run_once(self) -> int:
        cutoff = self._clock() - self._retention
        deleted = await self._log.purge_recorded_before(cutoff)
        log.info("audit retention: %d record(s) recorded before %s deleted", deleted, cutoff)
        return deleted

    async def start(self) -> None:
        await self._schedule.start()

    async def stop(self) -> None:
        await self._schedule.stop()
