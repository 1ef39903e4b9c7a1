"""Wiring of llm-invocation: `python -m services.llm_invocation` or
`faststream run --factory services.llm_invocation.app:create_app`.

    llm-requests ──▶ LLMRequestHandler ──▶ llm_results (Mongo, kept results)
                        │  └─ Invoker: circuit breaker → rate limits → provider (retries, deadline)
                        ├──▶ llm-stream  (LLMTokenDelta, seq 0..n)
                        └──▶ llm-results (LLMCompleted / LLMFailed)
    session-events ──▶ SessionEventsWatcher ──▶ cancels abandoned invocations
    session-events ──▶ KeptResultsErasure ──▶ deletes an erased session's kept results
    retention job ──▶ llm_results

The shared runtime's key-ordered consumer runs hundreds of invocations at once across sessions
(bounded by max_in_flight) while one session's requests run in order.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faststream import FastStream
from pymongo import AsyncMongoClient

from contracts.topics import Service, TopicName
from services.llm_invocation.claims import InvocationClaims
from services.llm_invocation.handler import LLMRequestHandler
from services.llm_invocation.invoker import Invoker
from services.llm_invocation.providers.provider import LLMProvider
from services.llm_invocation.providers.provider_selection import build_invoker
from services.llm_invocation.result_store import KeptResults
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime import Record, ServiceRuntime
from services.runtime.kept_results_erasure import KeptResultsErasure, is_erasure
from services.runtime.retention import RetentionJob
from services.runtime.session_watch import SessionEventsWatcher
from services.runtime.settings_errors import built, load_settings


@dataclass(frozen=True, slots=True)
class LLMInvocationService:
    settings: LLMInvocationSettings
    runtime: ServiceRuntime
    mongo: AsyncMongoClient[dict[str, Any]]
    results: KeptResults
    invoker: Invoker
    handler: LLMRequestHandler
    retention: RetentionJob
    watcher: SessionEventsWatcher | None


def build(
    settings: LLMInvocationSettings | None = None,
    *,
    configure_logs: bool = True,
    provider: LLMProvider | None = None,
) -> LLMInvocationService:
    settings = settings or LLMInvocationSettings()
    runtime = ServiceRuntime(Service.LLM_INVOCATION.value, settings, configure_logs=configure_logs)
    topics = settings.topics
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    results = KeptResults(mongo[settings.mongodb_database])
    invoker = build_invoker(settings, provider)
    handler = LLMRequestHandler(
        invoker=invoker,
        results=results,
        publish=runtime.publish,
        stream_topic=topics.name(TopicName.LLM_STREAM),
        results_topic=topics.name(TopicName.LLM_RESULTS),
        claims=InvocationClaims(results, lease_s=settings.llm_claim_lease_s),
        delta_interval_s=settings.llm_delta_interval_ms / 1000,
    )
    retention = RetentionJob(
        "llm_results",
        results.delete_kept_before,
        retention=timedelta(hours=settings.llm_result_retention_hours),
        interval_s=settings.llm_result_retention_interval_s,
    )
    watcher = (
        SessionEventsWatcher(
            settings,
            topics.name(TopicName.SESSION_EVENTS),
            handler.in_flight,
            handler.cancelled,
            lookback_s=settings.llm_cancellation_lookback_s,
            client_id=settings.client_id("llm-invocation.session-watch"),
        )
        if settings.llm_watch_session_events
        else None
    )

    @runtime.consumer(topics.name(TopicName.LLM_REQUESTS), group_id=settings.llm_consumer_group)
    async def invoke_llm(record: Record) -> None:
        """LLMRequested → token deltas on llm-stream, then LLMCompleted / LLMFailed on llm-results."""
        await handler(record)

    # A consumer group of its own (unlike the session watcher): the deletion is a durable
    # effect, so its offset is committed only once the results are gone.
    erasure = KeptResultsErasure(results, "LLM")

    @runtime.consumer(
        topics.name(TopicName.SESSION_EVENTS),
        group_id=settings.llm_erasure_consumer_group,
        accepts=is_erasure,  # the other session facts (four per turn) need no handler call
    )
    async def erase_kept_results(record: Record) -> None:
        """SessionErased → the session's kept LLM results deleted."""
        await erasure(record)

    async def mongo_answers() -> bool:
        await mongo.admin.command("ping")
        return True

    async def close_provider() -> None:
        await invoker.provider.aclose()

    runtime.add_readiness_check("mongo", mongo_answers)
    # Indexes before the first record; jobs after start-up; Mongo and the provider's
    # connections closed only after the runtime drained the handlers that use them.
    runtime.app.on_startup(results.ensure_indexes)
    if watcher is not None:
        runtime.app.on_startup(watcher.start)
        # Cancellations read back before the first request (a redelivery after a crash).
        runtime.app.on_startup(watcher.caught_up)
        runtime.app.after_shutdown(watcher.stop)
    runtime.app.after_startup(retention.start)
    runtime.app.on_shutdown(retention.stop)
    runtime.app.after_shutdown(close_provider)
    runtime.app.after_shutdown(mongo.close)
    return LLMInvocationService(
        settings, runtime, mongo, results, invoker, handler, retention, watcher
    )


def create_app() -> FastStream:
    """The app, built when called (`faststream run --factory`): importing this module (tests,
    the CLI) builds nothing and reads no environment.
    A bad setting or configuration file exits 2 with one line naming it, as under `python -m`
    (FastStream's CLI would print a traceback and exit 1)."""
    settings = load_settings(LLMInvocationSettings, "llm-invocation")
    return built("llm-invocation", lambda: build(settings)).runtime.app
