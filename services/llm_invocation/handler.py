"""LLMRequested → (kept result | invocation) → keep → publish. Thin: the work is elsewhere.

Order of effects, for at-least-once delivery without paying twice:
1. a kept result for the invocation id → republish it, done (no provider call);
2. otherwise invoke, publishing the text as deltas to `llm-stream` (seq 0, 1, … without
   gaps; coalesced under load, see delta_stream.py), all acknowledged before step 3;
3. keep the result in Mongo (acknowledged write), then publish it to `llm-results` (acks=all).
The offset is committed only after step 3 returns. A crash before 3 re-runs the invocation;
a crash between keeping and publishing republishes the kept result.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from contracts.base import Message, derive_id
from contracts.codec import decode, encode
from contracts.limits import MAX_REASON_LENGTH
from contracts.llm import LLMCompleted, LLMFailed, LLMRequested, LLMTokenDelta
from contracts.topics import Service, TopicName
from services.llm_invocation import metrics
from services.llm_invocation.completion import Completion
from services.llm_invocation.delta_stream import DeltaStream
from services.llm_invocation.in_flight import InFlightInvocations
from services.llm_invocation.invoker import Failure, Invoker, Outcome
from services.runtime import Record, bind_log_context, current_traceparent
from services.runtime.publishing import Publish

SOURCE = Service.LLM_INVOCATION.value


class ResultKeeper(Protocol):
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
    ) -> None:
        self._invoker = invoker
        self._results = results
        self._publish = publish
        self._stream_topic = stream_topic
        self._results_topic = results_topic
        self.in_flight = in_flight or InFlightInvocations()

    async def __call__(self, record: Record) -> None:
        """Answer one LLMRequested with exactly one kept LLMCompleted / LLMFailed."""
        decoded = decode(record.value, record.headers, topic=TopicName.LLM_REQUESTS)
        request = decoded.message
        if not isinstance(request, LLMRequested):  # the topic filter admits nothing else
            raise TypeError(f"unexpected {type(request).__name__} on llm-requests")
        bind_log_context(turn_id=request.turn_id, invocation_id=request.invocation_id)
        causation = _Causation(
            correlation_id=decoded.envelope.correlation_id or request.id,
            causation_id=request.id,
            traceparent=current_traceparent() or decoded.envelope.traceparent,
        )
        kept = await self._results.get(request.invocation_id)
        if kept is not None:
            metrics.REPLAYED.inc()
            await self._send(self._results_topic, kept, causation)
            return
        started = time.perf_counter()
        outcome = await self._invoke(request, causation)
        result = self._result(request, outcome)
        _count(result, self._invoker.provider.name, time.perf_counter() - started)
        kept = await self._results.keep(result)
        await self._send(self._results_topic, kept, causation)

    async def _invoke(self, request: LLMRequested, causation: _Causation) -> Outcome:
        async def send(delta: LLMTokenDelta) -> None:
            await self._send(self._stream_topic, delta, causation)

        deltas = DeltaStream(request, send)
        # A task of its own, so that abandoning it (in_flight.abandon) is told apart from the
        # cancellation of this handler at shutdown, which must propagate.
        task: asyncio.Task[Outcome] = asyncio.create_task(
            self._invoker.invoke(request, deltas.push), name=f"invoke-{request.invocation_id}"
        )
        registration = self.in_flight.register(request, task)
        try:
            try:
                outcome = await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if registration.abandoned is None or (current is not None and current.cancelling()):
                    raise
                outcome = Failure("abandoned", registration.abandoned, retryable=False)
            await deltas.flush()  # every delta acknowledged before the result is published
            return outcome
        finally:
            await deltas.cancel()
            self.in_flight.finish(registration)

    def _result(self, request: LLMRequested, outcome: Outcome) -> LLMCompleted | LLMFailed:
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
            return LLMCompleted(
                **common,
                content=outcome.content,
                tool_calls=outcome.tool_calls,
                usage=outcome.usage,
                finish_reason=outcome.finish_reason,
                provider=self._invoker.provider.name,
                model=self._invoker.provider.model_for(request)[:128],
            )
        return LLMFailed(
            **common,
            error_class=outcome.error_class[:100],
            message=outcome.message[:MAX_REASON_LENGTH],
            retryable=outcome.retryable,
        )

    async def _send(self, topic: str, message: Message, causation: _Causation) -> None:
        encoded = encode(
            message,
            source=SOURCE,
            correlation_id=causation.correlation_id,
            causation_id=causation.causation_id,
            traceparent=causation.traceparent,
        )
        # A broker outage arrives as RetryableError (ServiceRuntime.publish): the record is
        # retried, never dead-lettered; docs/llm-invocation.md, "Failures while publishing".
        await self._publish(topic, encoded)


def _count(result: LLMCompleted | LLMFailed, provider: str, seconds: float) -> None:
    metrics.DURATION.labels(provider).observe(seconds)
    if isinstance(result, LLMCompleted):
        metrics.INVOCATIONS.labels(result.provider, result.model, "completed").inc()
        metrics.TOKENS.labels(result.provider, result.model, "prompt").inc(
            result.usage.prompt_tokens
        )
        metrics.TOKENS.labels(result.provider, result.model, "completion").inc(
            result.usage.completion_tokens
        )
    else:
        metrics.INVOCATIONS.labels(provider, "", result.error_class).inc()
