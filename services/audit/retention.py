"""The retention job: drops audit log records older than the retention period.

An application job rather than a TTL index: the Mongo-compatible server used without Docker
ignores TTL indexes, and a job makes the period a setting that can change without rebuilding
an index. Every audit instance runs it; deleting by a cutoff is idempotent, so instances
running it concurrently only repeat each other's work.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from contracts.base import utc_now

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
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        cutoff = self._clock() - self._retention
        deleted = await self._log.purge_recorded_before(cutoff)
        log.info("audit retention: %d record(s) recorded before %s deleted", deleted, cutoff)
        return deleted

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the job must outlive an outage; the next run catches up
                log.exception("audit retention run failed")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        # async so that FastStream calls it on the event loop (sync hooks run in a thread).
        if self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="audit-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
