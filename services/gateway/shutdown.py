"""Stopping Kafka clients without hanging shutdown when the broker is gone.

aiokafka's `stop()` flushes and says goodbye to the broker; with the broker down that can wait
for a long time, and cancelling it is not always honoured (so `asyncio.wait_for` could hang
as well). A gateway being stopped must exit: give the stop a bounded time, then abandon it.
"""

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)


async def stop_within(stopping: Awaitable[None], timeout_s: float, what: str) -> None:
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        log.warning("%s did not stop within %.0fs; abandoned", what, timeout_s)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("%s stopped with an error: %r", what, task.exception())
