"""Group commit: many handlers' writes go to the database as one request per batch.

The key-ordered consumer runs hundreds of sessions at once; if each sends its own request,
the server's per-request cost dominates and the requests queue behind each other. Here a
handler submits its item and awaits its own result; one flusher task sends everything
submitted so far as one batch, and whatever arrives meanwhile waits for the next. So there is
at most one request in flight per `WriteBatch` (Mongo concurrency bounded by construction),
and under load the batches grow instead of the queue.

A handler still learns its own outcome before it returns, so "commit offsets only past
durable effects" holds unchanged: nothing is acknowledged before its batch is durable. A
failed batch fails every waiter of it (each retries its record: the writes are idempotent).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]
"""Writes a batch; returns one result per item, in order: a value, or the exception that item
gets (raise: the whole batch failed)."""


class WriteBatch(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, max_batch: int = 500, name: str = "batch") -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name=self._name)
        # Shielded: a cancelled handler must not cancel the batch other handlers wait for.
        return await asyncio.shield(future)

    async def _flush_all(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._flush([item for item, _ in batch])
                done = list(zip(batch, results, strict=True))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in done:
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
