"""LLMRequested → (kept result | claim → invocation) → keep → publish. Thin: the work is elsewhere.

Order of effects, for at-least-once delivery without paying twice:
1. claim the invocation id in the kept-results store (claims.py): a kept result → republish
   it, done (no provider call); another owner's live claim → wait for its result or its lease;
2. invoke, renewing the claim's lease, publishing the text as deltas to `llm-stream` (seq 0,
   1, … without gaps; coalesced under load, see delta_stream.py);
3. the durable steps, with the outcome in hand: every delta acknowledged, the result kept in
   Mongo (acknowledged write), then published to `llm-results` (acks=all). A broker or Mongo
   outage here is retried here, never by re-running the record: that would pay for the call
   again although its completion is in memory.
The offset is committed only after step 3 returns. A crash before 3 re-runs the invocation
(once its lease lapsed); a crash between keeping and publishing republishes the kept result.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from contracts.base import Message, derive_id
from contracts.codec import EncodeError, decode, encode
from contracts.limits import MAX_CONTENT_LENGTH, MAX_REASON_LENGTH
from contracts.llm import LLMCompleted, LLMFailed, LLMRequested, LLMTokenDelta
from contracts.topics import Service, TopicName
from services.llm_invocation import metrics
from services.llm_invocation.abandonment import CANCELLED
from services.llm_invocation.claims import Claimed, ClaimStore, InvocationClaims
from services.llm_invocation.completion import Completion
from services.llm_invocation.delta_stream import DeltaStream
from services.llm_invocation.in_flight import InFlightInvocations
from services.llm_invocation.invoker import Failure, Invoker, Outcome
from services.llm_invocation.providers.provider_errors import BadResponse
from services.runtime import Record, RetryableError, bind_log_context, current_traceparent
from services.runtime.cancelled_turns import CancelledTurns
from services.runtime.publishing import Publish
from services.runtime.retry import Backoff

log = logging.getLogger(__name__)

SOURCE = Service.LLM_INVOCATION.value

DURABLE_STEPS_BACKOFF = Backoff(initial_s=0.1, max_s=5.0)
"""The runtime's backoff rule, capped low: a finished call lands soon after the outage ends."""


class ResultKeeper(ClaimStore[LLMCompleted | LLMFailed], Protocol):
    """The kept-results port: claims (claims.py), then the result of each invocation."""

    async def get(self, invocation_id: str) -> LLMCompleted | LLMFailed | None: ...
    async def keep(self, result: LLMCompleted | LLMFailed) -> LLMCompleted | LLMFailed: ...


@dataclass(frozen=True, slots=True)
class _Causation:
    correlation_id: str
    causation_id: str
    traceparent: str | None


class LLMRequestHandler:
    def __init__(
        self,
        *,
        invoker: Invoker,
        results: ResultKeeper,
        publish: Publish,
        stream_topic: str,
        results_topic: str,
        in_flight: InFlightInvocations | None = None,
        cancelled: CancelledTurns | None = None,
        claims: InvocationClaims | None = None,
        durable_steps_backoff: Backoff = DURABLE_STEPS_BACKOFF,
        delta_interval_s: float = 0.0,
    ) -> None:
        self._invoker = invoker
        self._delta_interval_s = delta_interval_s
        self._results = results
        self._claims = claims or InvocationClaims(results)
        self._backoff = durable_steps_backoff
        self._publish = publish
        self._stream_topic = stream_topic
        self._results_topic = results_topic
        self.in_flight = in_flight or InFlightInvocations()
        self.cancelled = cancelled if cancelled is not None else CancelledTurns()

    async def __call__(self, record: Record) -> None:
        """Answer one LLMRequested with exactly one kept LLMCompleted / LLMFailed."""
        decoded = decode(record.value, record.headers, topic=TopicName.LLM_REQUESTS)
        request = decoded.message
        if not isinstance(request, LLMRequested):  # the topic filter admits nothing else
            raise TypeError(f"unexpected {type(request).__name__} on llm-requests")
        bind_log_context(turn_id=request.turn_id, invocation_id=request.invocation_id)
        causation = _Causation(
            correlation_id=decoded.envelope.chain_correlation_id(request.id),
            causation_id=request.id,
            traceparent=current_traceparent() or decoded.envelope.traceparent,
        )
        claimed = await self._claims.acquire(request.invocation_id, request.session_id)
        if not isinstance(claimed, Claimed):
            metrics.REPLAYED.inc()
            await self._send(self._results_topic, claimed, causation)
            return

        async def send(delta: LLMTokenDelta) -> None:
            await self._send(self._stream_topic, delta, causation)

        deltas = DeltaStream(request, send, interval_s=self._delta_interval_s)
        try:
            async with self._claims.renewing(claimed):
                started = time.perf_counter()
                outcome = await self._invoke(request, deltas)
                result = self._result(request, outcome, deltas)
                provider = self._invoker.provider
                _count(result, provider.name, provider.model_for(request)[:128], started)
                await self._make_durable(result, deltas, causation)
        except BaseException:
            # Shutdown (cancelled) or a bug (dead letter): nothing kept, let the next owner in.
            await self._claims.release(claimed)
            raise
        finally:
            await deltas.cancel()

    async def _invoke(self, request: LLMRequested, deltas: DeltaStream) -> Outcome:
        cancelled = self.cancelled.reason(request.turn_id)
        if cancelled is not None:
            # A hop's next step, or a redelivery after a crash: the turn is over, pay nothing.
            return Failure(CANCELLED, f"turn {request.turn_id} was cancelled ({cancelled})", False)
        # A task of its own, so that abandoning it (in_flight.abandon) is told apart from the
        # cancellation of this handler at shutdown, which must propagate.
        task: asyncio.Task[Outcome] = asyncio.create_task(
            self._invoker.invoke(request, deltas.push), name=f"invoke-{request.invocation_id}"
        )
        registration = self.in_flight.register(request, task)
        try:
            try:
                return await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if registration.abandoned is None or (current is not None and current.cancelling()):
                    raise
                return Failure(registration.error_class, registration.abandoned, retryable=False)
        finally:
            self.in_flight.finish(registration)

    async def _make_durable(
        self, result: LLMCompleted | LLMFailed, deltas: DeltaStream, causation: _Causation
    ) -> None:
        """Deltas acknowledged, result kept, result published: retried until done.

        Here and not by the runtime's re-run of the record, because the outcome exists only in
        this handler's memory. Shutdown cancels the wait (the record stays uncommitted)."""
        kept: LLMCompleted | LLMFailed | None = None
        attempt = 0
        while True:
            try:
                await deltas.flush()  # every delta acknowledged before the result is published
                if kept is None:
                    kept = await self._results.keep(result)
                await self._send(self._results_topic, kept, causation)
            except RetryableError as error:
                attempt += 1
                metrics.DURABLE_STEP_RETRIES.inc()
                delay = self._backoff.delay(attempt)
                log.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,
                    "invocation %s finished; its durable steps failed (attempt %d), "
                    "retrying in %.1f s without calling the provider again: %s",
                    result.invocation_id,
                    attempt,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                continue
            if attempt:
                log.info("invocation %s: durable after %d retries", result.invocation_id, attempt)
            return

    def _result(
        self, request: LLMRequested, outcome: Outcome, deltas: DeltaStream
    ) -> LLMCompleted | LLMFailed:
        common = {
            "id": derive_id("llm-result", request.invocation_id),
            "session_id": request.session_id,
            "tenant_id": request.tenant_id,
            "invocation_id": request.invocation_id,
            "turn_id": request.turn_id,
            "step": request.step,
            "agent": request.agent,
        }
        if isinstance(outcome, Completion):
            completed = LLMCompleted(
                **common,
                content=outcome.content,
                tool_calls=outcome.tool_calls,
                usage=outcome.usage,
                finish_reason=outcome.finish_reason,
                provider=self._invoker.provider.name,
                model=self._invoker.provider.model_for(request)[:128],
            )
            problem = _unpublishable(completed)
            if problem is None:
                return completed
            outcome = Failure(BadResponse.error_class, problem, BadResponse.retryable)
        return LLMFailed(
            **common,
            error_class=outcome.error_class[:100],
            message=outcome.message[:MAX_REASON_LENGTH],
            retryable=outcome.retryable,
            # What the user saw of a cancelled turn: every delta pushed is published before the
            # result (`_make_durable`), so this is exactly the text of the deltas.
            partial_content=deltas.text[:MAX_CONTENT_LENGTH]
            if outcome.error_class == CANCELLED
            else "",
        )

    async def _send(self, topic: str, message: Message, causation: _Causation) -> None:
        encoded = encode(
            message,
            source=SOURCE,
            correlation_id=causation.correlation_id,
            causation_id=causation.causation_id,
            traceparent=causation.traceparent,
        )
        # A broker outage arrives as RetryableError (ServiceRuntime.publish): after the call it
        # is retried by `_make_durable`; docs/llm-invocation.md, "Failures while publishing".
        await self._publish(topic, encoded)


def _unpublishable(completed: LLMCompleted) -> str | None:
    """Why no record can carry the completion, if none can: 16 tool calls of 16,000 characters
    that JSON writes as 4-6 bytes each (emoji, control characters) pass every length limit of
    the contract and still exceed MAX_MESSAGE_BYTES. Published as it was, it failed after the
    keep: the request was dead-lettered without any result and its turn never ended. Only tool
    calls can get there (32,000 characters of content stay far below), so only they pay for
    the check."""
    if not completed.tool_calls:
        return None
    try:
        encode(completed, source=SOURCE)  # the codec's size rule, not a second copy
    except EncodeError as error:
        calls = len(completed.tool_calls)
        return f"the answer's {calls} tool calls are too large to publish: {error}"
    return None


def _count(result: LLMCompleted | LLMFailed, provider: str, model: str, started: float) -> None:
    metrics.DURATION.labels(provider).observe(time.perf_counter() - started)
    if isinstance(result, LLMCompleted):
        metrics.INVOCATIONS.labels(result.provider, result.model, "completed").inc()
        metrics.TOKENS.labels(result.provider, result.model, "prompt").inc(
            result.usage.prompt_tokens
        )
        metrics.TOKENS.labels(result.provider, result.model, "completion").inc(
            result.usage.completion_tokens
        )
    else:
        metrics.INVOCATIONS.labels(provider, model, result.error_class).inc()
