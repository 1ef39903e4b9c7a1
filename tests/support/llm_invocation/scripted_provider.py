"""An in-memory provider that plays scripted attempts (unit tests of the invoker and handler)."""

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Sequence

from contracts.llm import FinishReason, LLMRequested, Usage
from services.llm_invocation.providers.stream_events import StreamEvent, StreamFinished, TextDelta

HANG = "hang"
"""In a script: wait forever at this point (until cancelled)."""

Step = StreamEvent | Exception | str | asyncio.Event
"""An Event in a script: wait until it is set (a call that takes as long as the test says)."""
Attempt = Sequence[Step] | Exception


def answer(text: str = "Hello world") -> list[Step]:
    return [
        TextDelta(text[:5]),
        TextDelta(text[5:]),
        StreamFinished(FinishReason.STOP, Usage(total_tokens=3)),
    ]


class ScriptedProvider:
    def __init__(self, *attempts: Attempt, default: Attempt | None = None) -> None:
        self._attempts: deque[Attempt] = deque(attempts)
        self._default = default if default is not None else answer()
        self.calls = 0
        self.closed_streams = 0
        self.called = asyncio.Event()

    @property
    def name(self) -> str:
        return "scripted"

    def model_for(self, request: LLMRequested) -> str:
        return request.model or "scripted-model"

    async def stream(self, request: LLMRequested) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        self.called.set()
        attempt = self._attempts.popleft() if self._attempts else self._default
        if isinstance(attempt, Exception):
            raise attempt
        try:
            for step in attempt:
                if isinstance(step, Exception):
                    raise step
                if isinstance(step, asyncio.Event):
                    await step.wait()
                    continue
                if step == HANG:
                    await asyncio.Event().wait()
                    continue
                assert not isinstance(step, str)
                yield step
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        return None
