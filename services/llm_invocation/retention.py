"""The retention job of kept results: deletes those older than the retention period.

Kept results only matter while their request can still be redelivered, i.e. while it is on
the llm-requests topic (3 days by default), so that is the default retention. Every instance
runs the job; deleting by a cutoff is idempotent.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from contracts.base import utc_now

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
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        cutoff = self._clock() - self._retention
        deleted = await self._results.delete_kept_before(cutoff)
        if deleted:
            log.info("llm_results retention: %d result(s) kept before %s deleted", deleted, cutoff)
        return deleted

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # outlive an outage; the next run catches up
                log.exception("llm_results retention run failed")
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        """Async on purpose: FastStream runs sync hooks in a worker thread, without a loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run_forever(), name="llm-results-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
