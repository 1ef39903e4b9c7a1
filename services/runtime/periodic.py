"""A periodic job: runs `run_once` now and then every interval, until stopped.

For the maintenance jobs every instance runs (retention, expiry). Their passes are idempotent,
so a failed pass is logged and the job goes on: an outage must not end it, the next pass
catches up.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

_log = logging.getLogger(__name__)


class PeriodicJob:
    """`name` names one pass in the logs and the task: "expiry pass" logs "expiry pass failed"."""

    def __init__(
        self,
        name: str,
        run_once: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
        log: logging.Logger = _log,
    ) -> None:
        self.name = name
        self._run_once = run_once
        self._interval_s = interval_s
        self._log = log
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        # Async so that FastStream calls it on the event loop (it runs sync hooks in a thread).
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run_forever(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            # The flag as well as the cancel: a pass cancelled inside a driver can come back as
            # an ordinary error (pymongo turns a cancelled operation into one), which the loop
            # logs and survives; the flag still ends it instead of a sleep of a whole interval
            # that would hold the shutdown.
            self._stopping.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except Exception:
                if self._stopping.is_set():
                    return
                self._log.exception("%s failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
