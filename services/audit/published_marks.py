"""The audit log's "published" marks, written behind: no handler waits for its mark.

The mark only keeps a replay quiet (docs/audit.md, "Why the published mark stays"): the
records are already stored and acknowledged by the broker when it is set, and a record
published twice has the same id and bytes. So a handler notes its record id and returns; one
flusher task waits `linger_s` for more, then writes every id noted so far in one request (at
most one in flight), and the service flushes what is left after its drain on shutdown. The
linger makes the batches large at any load (in a profile under benchmarks/audit_cost.py an
`updateMany` cost the process ~1 ms of CPU in pymongo, nearly independent of its ~30 ids; at
500 facts/s, 0.25 s gathers ~125). A mark lost to a crash (at most the last `linger_s`
and the request in flight) or an outage means only that a replay in a new consumer group
re-publishes that record (same id, same bytes) instead of nothing.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Final

from services.runtime.errors import RetryableError

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = 1.0
MAX_PENDING: Final = 100_000
"""Ids kept for a retry while the database is unavailable; beyond it the oldest are dropped."""

WriteMarks = Callable[[list[str]], Awaitable[None]]


class PublishedMarks:
    def __init__(
        self, write: WriteMarks, *, linger_s: float = 0.25, max_batch: int = 5_000
    ) -> None:
        self._write = write
        self._linger_s = linger_s
        self._max_batch = max_batch
        self._pending: list[str] = []
        self._flusher: asyncio.Task[None] | None = None
        self._now = asyncio.Event()

    def note(self, record_id: str) -> None:
        self._pending.append(record_id)
        if self._flusher is None or self._flusher.done():
            self._now.clear()
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_all(), name="audit-published-marks"
            )

    async def flush(self, timeout_s: float = 5.0) -> None:
        """Write the marks noted so far now, and wait for them (or `timeout_s`: an outage)."""
        flusher = self._flusher
        if flusher is None or flusher.done():
            return
        self._now.set()
        try:
            await asyncio.wait_for(asyncio.shield(flusher), timeout_s)
        except TimeoutError:
            log.warning("audit: %d published marks not written", len(self._pending))

    async def _flush_all(self) -> None:
        if self._linger_s > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), self._linger_s)
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._write(batch)
            except RetryableError as exc:
                log.warning("audit: published marks not written yet, retrying: %s", exc)
                self._pending[:0] = batch
                del self._pending[:-MAX_PENDING]
                await asyncio.sleep(RETRY_AFTER_S)
            except Exception:  # not an outage: these marks are lost, later ones may not be
                log.exception("audit: %d published marks dropped", len(batch))
