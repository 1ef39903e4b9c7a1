"""One invocation: circuit breaker → rate limits → provider stream, retried within a deadline.

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
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.trace import Tracer

from contracts.llm import LLMRequested
from services.llm_invocation import metrics
from services.llm_invocation.completion import Completion, CompletionBuilder
from services.llm_invocation.llm_span import llm_span, record_completion, record_failure
from services.llm_invocation.providers.provider import LLMProvider
from services.llm_invocation.providers.provider_errors import CircuitOpen, ProviderError
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
        tracer: Tracer | None = None,
    ) -> None:
        self.provider = provider
        self._breakers = breakers or ProviderCircuitBreakers()
        self._limiter = limiter or ProviderRateLimiter(RateLimitConfig())
        self._retry = retry or RetryPolicy()
        self._deadline_s = deadline_s
        self._rng = rng
        # The global provider's (ServiceRuntime installs it), looked up when spans start.
        self._tracer = tracer or trace.get_tracer("agent_runtime.llm_invocation")

    async def invoke(self, request: LLMRequested, on_text: OnText) -> Outcome:
        """Never raises a ProviderError: failures come back as `Failure`."""
        provider, model = self.provider.name, self.provider.model_for(request)
        with llm_span(self._tracer, request, provider, model) as span:
            outcome = await self._within_deadline(request, _FirstToken(on_text, request, model))
            if isinstance(outcome, Completion):
                record_completion(span, model, outcome)
            else:
                record_failure(span, outcome.error_class, outcome.message)
            return outcome

    async def _within_deadline(self, request: LLMRequested, on_text: OnText) -> Outcome:
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
            builder = CompletionBuilder()
            try:
                # An open circuit fails at once, without waiting for (and using up) a slot of
                # the rate limit for a call it will not make. The wait itself is outside the
                # guard: a deadline that passes in it is no outcome of the provider's.
                self._breakers.check(provider, model)
                await self._limiter.acquire(estimated)
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
                if not isinstance(error, CircuitOpen):  # refused here: the provider was not called
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


class _FirstToken:
    """Passes text on; on the first piece, observes the time to first token: from the
    request's `occurred_at` (orchestration asked) to now, so waiting on llm-requests, rate
    limits and retries count, as they do for the user."""

    __slots__ = ("_model", "_on_text", "_request", "_seen")

    def __init__(self, on_text: OnText, request: LLMRequested, model: str) -> None:
        self._on_text = on_text
        self._request = request
        self._model = model
        self._seen = False

    async def __call__(self, text: str) -> None:
        if not self._seen:
            self._seen = True
            waited = (datetime.now(UTC) - self._request.occurred_at).total_seconds()
            metrics.TIME_TO_FIRST_TOKEN.labels(self._model).observe(max(0.0, waited))
        await self._on_text(text)


def _remaining(deadline: asyncio.Timeout) -> float:
    when = deadline.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()
