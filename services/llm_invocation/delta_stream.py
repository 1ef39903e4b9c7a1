"""An invocation's text as numbered LLMTokenDelta records: seq 0, 1, 2 … without gaps.

Publishing is decoupled from reading the provider's stream and coalesces: text that arrives
while a delta is being published (acks=all) is joined into the next delta, and so is text that
arrives less than `interval_s` after the last delta went out (the first delta goes at once, and
`flush` publishes what is left without waiting). When the broker is fast and the model slower
than the interval, every chunk of the model becomes its own delta; otherwise deltas get larger
instead of the provider's stream (and the connection) being held up. Fewer records is what
keeps hundreds of invocations per process affordable, for this service and for everything that
reads `llm-stream`.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from contracts.base import derive_id
from contracts.limits import MAX_DELTA_LENGTH
from contracts.llm import LLMRequested, LLMTokenDelta

SendDelta = Callable[[LLMTokenDelta], Awaitable[None]]


class DeltaStream:
    def __init__(
        self,
        request: LLMRequested,
        send: SendDelta,
        *,
        retry_after_s: float = 1.0,
        interval_s: float = 0.0,
    ) -> None:
        self._request = request
        self._send = send
        self._retry_after_s = retry_after_s
        self._interval_s = interval_s
        self._sent_at: float | None = None
        """When the last delta's publish started (the loop's clock)."""
        self._flushing = asyncio.Event()
        """Set by `flush`: what is queued goes now, without waiting for the interval."""
        self._pending: list[str] = []
        self._head: LLMTokenDelta | None = None
        """The delta being published, or the one whose publish failed (sent again as it is)."""
        self._task: asyncio.Task[None] | None = None
        self._failed_at: float | None = None
        self.published = 0
        """Deltas published so far, i.e. the next seq."""
        self._text: list[str] = []

    @property
    def text(self) -> str:
        """All text pushed so far: once `flush` returned, the text of the deltas published."""
        return "".join(self._text)

    async def push(self, text: str) -> None:
        """Queue text; returns at once and never raises.

        A failed publish must not stop the provider's stream: the call is paid for, so its text
        is kept here and published later, from the delta that failed (same seq, same text), by
        the next push a little later or at `flush`."""
        self._text.append(text)
        self._pending.append(text)
        if self._task is not None and not self._task.done():
            return
        loop = asyncio.get_running_loop()
        if self._failed_at is None or loop.time() - self._failed_at >= self._retry_after_s:
            self._task = asyncio.create_task(self._drain(), name="deltas")

    async def flush(self) -> None:
        """Publish everything queued; raises if a delta could not be published (call again)."""
        self._flushing.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._failed_at = None
        await self._publish_queued()

    async def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> None:
        try:
            await self._publish_queued()
        except Exception:
            # Kept in `_head` and `_pending`; `flush` raises the error if it persists.
            self._failed_at = asyncio.get_running_loop().time()
        else:
            self._failed_at = None

    async def _publish_queued(self) -> None:
        # Text that arrives while a delta is being published joins the next one (coalescing).
        while self._head is not None or self._pending:
            if self._head is None:
                await self._pace()
                text = "".join(self._pending)
                self._pending.clear()
                if not text:
                    continue
                if len(text) > MAX_DELTA_LENGTH:
                    self._pending.append(text[MAX_DELTA_LENGTH:])
                self._head = self._delta(text[:MAX_DELTA_LENGTH])
            self._sent_at = asyncio.get_running_loop().time()
            await self._send(self._head)
            self._head = None
            self.published += 1

    async def _pace(self) -> None:
        """Wait until `interval_s` has passed since the last delta went out, or a flush."""
        if self._sent_at is None or self._flushing.is_set():
            return
        wait = self._sent_at + self._interval_s - asyncio.get_running_loop().time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._flushing.wait()

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
