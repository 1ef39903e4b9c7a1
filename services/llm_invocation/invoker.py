"""One invocation: rate limits → circuit breaker → provider stream, retried within a deadline.

Text is handed to `on_text` as it arrives (the handler publishes it as numbered deltas). The
outcome is a `Completion` or a `Failure`; a cancelled invocation raises CancelledError, and
closing the provider's stream on the way out closes the HTTP connection, so a provider that
supports it stops generating (and billing) at once.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts.llm import LLMRequested
from services.llm_invocation import metrics
from services.llm_invocation.completion import Completion, CompletionBuilder
from services.llm_invocation.providers.provider import LLMProvider
from services.llm_invocation.providers.provider_errors import ProviderError
from services.llm_invocation.providers.token_estimate import estimate_prompt_tokens, estimate_tokens
from services.llm_invocation.resilience.circuit_breakers import ProviderCircuitBreakers
from services.llm_invocation.resilience.rate_limits import ProviderRateLimiter, RateLimitConfig
from services.llm_invocation.resilience.retry_policy import RetryPolicy

log = logging.getLogger(__name__)

OnText = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Failure:
    error_class: str
    message: str
    retryable: bool


Outcome = Completion | Failure


class Invoker:
    def __init__(
        self,
        provider: LLMProvider,
        *,
        breakers: ProviderCircuitBreakers | None = None,
        limiter: ProviderRateLimiter | None = None,
        retry: RetryPolicy | None = None,
        deadline_s: float = 120.0,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self._breakers = breakers or ProviderCircuitBreakers()
        self._limiter = limiter or ProviderRateLimiter(RateLimitConfig())
        self._retry = retry or RetryPolicy()
        self._deadline_s = deadline_s
        self._rng = rng

    async def invoke(self, request: LLMRequested, on_text: OnText) -> Outcome:
        """Never raises a ProviderError: failures come back as `Failure`."""
        try:
            async with asyncio.timeout(self._deadline_s) as deadline:
                return await self._attempts(request, on_text, deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            return Failure(
                "deadline_exceeded", f"no result within the {self._deadline_s:g} s deadline", True
            )

    async def _attempts(
        self, request: LLMRequested, on_text: OnText, deadline: asyncio.Timeout
    ) -> Outcome:
        provider, model = self.provider.name, self.provider.model_for(request)
        estimated = estimate_tokens(request)
        streamed = False
        attempt = 0
        while True:
            attempt += 1
            await self._limiter.acquire(estimated)
            builder = CompletionBuilder()
            try:
                async with self._breakers.guard(provider, model):
                    async with contextlib.aclosing(self.provider.stream(request)) as events:
                        async for event in events:
                            text = builder.add(event)
                            if text:
                                streamed = True
                                await on_text(text)
                            if builder.truncated:
                                break  # over the content limit: stop paying for the rest
                    completion = builder.build(
                        prompt_tokens_estimate=estimate_prompt_tokens(request)
                    )
            except ProviderError as error:
                metrics.ATTEMPTS.labels(provider, model, error.error_class).inc()
                delay = self._retry.delay(
                    attempt,
                    error,
                    streamed=streamed,
                    remaining_s=_remaining(deadline),
                    rng=self._rng,
                )
                if delay is None:
                    suffix = f" (attempt {attempt})" if attempt > 1 else ""
                    return Failure(error.error_class, f"{error}{suffix}", error.retryable)
                metrics.RETRIES.labels(provider, error.error_class).inc()
                log.info(
                    "invocation %s: %s on attempt %d, retrying in %.2f s",
                    request.invocation_id,
                    error.error_class,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            metrics.ATTEMPTS.labels(provider, model, "ok").inc()
            self._limiter.settle(estimated, completion.usage.total_tokens)
            return completion


def _remaining(deadline: asyncio.Timeout) -> float:
    when = deadline.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()
