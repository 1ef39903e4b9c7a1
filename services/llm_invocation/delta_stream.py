"""An invocation's text as numbered LLMTokenDelta records: seq 0, 1, 2 … without gaps.

Publishing is decoupled from reading the provider's stream and coalesces: text that arrives
while a delta is being published (acks=all) is joined into the next delta. When the broker is
fast, every chunk of the model becomes its own delta; when it is slow, deltas get larger
instead of the provider's stream (and the connection) being held up. Fewer records under load
is what keeps hundreds of invocations per process affordable.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from contracts.base import derive_id
from contracts.limits import MAX_DELTA_LENGTH
from contracts.llm import LLMRequested, LLMTokenDelta

SendDelta = Callable[[LLMTokenDelta], Awaitable[None]]


class DeltaStream:
    def __init__(self, request: LLMRequested, send: SendDelta) -> None:
        self._request = request
        self._send = send
        self._pending: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        """Deltas published so far, i.e. the next seq."""

    async def push(self, text: str) -> None:
        """Queue text; returns at once. Raises the error of an earlier failed publish."""
        self._raise_failure()
        self._pending.append(text)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="deltas")

    async def flush(self) -> None:
        """Wait until every queued delta is acknowledged; raises if one could not be published."""
        # Nothing pushes any more (the invocation is over), and the drain task takes whatever
        # was pushed while it ran, so awaiting it is enough.
        if self._task is not None:
            await self._task

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> None:
        while self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            for start in range(0, len(text), MAX_DELTA_LENGTH):
                await self._send(self._delta(text[start : start + MAX_DELTA_LENGTH]))
                self.published += 1

    def _delta(self, text: str) -> LLMTokenDelta:
        request, seq = self._request, self.published
        return LLMTokenDelta(
            id=derive_id("delta", request.invocation_id, seq),
            session_id=request.session_id,
            tenant_id=request.tenant_id,
            invocation_id=request.invocation_id,
            turn_id=request.turn_id,
            agent=request.agent,
            seq=seq,
            delta=text,
        )

    def _raise_failure(self) -> None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            error = self._task.exception()
            if error is not None:
                raise error
