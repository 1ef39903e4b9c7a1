"""The one interface every LLM provider implements."""

from collections.abc import AsyncGenerator
from typing import Protocol

from contracts.llm import LLMRequested
from services.llm_invocation.providers.stream_events import StreamEvent


class LLMProvider(Protocol):
    @property
    def name(self) -> str:
        """Short provider name, used in LLMCompleted.provider, breaker and limiter names."""
        ...

    def model_for(self, request: LLMRequested) -> str:
        """The model this request will run on (the request's override or the default)."""
        ...

    def stream(self, request: LLMRequested) -> AsyncGenerator[StreamEvent, None]:
        """Stream one completion: deltas and tool-call fragments, then one StreamFinished.

        Raises a `ProviderError` subclass on failure. Closing the iterator early (the caller
        was cancelled) must release the connection, so the provider stops generating.
        """
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...
