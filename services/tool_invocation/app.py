"""Wiring of tool-invocation: `python -m services.tool_invocation` or
`faststream run --factory services.tool_invocation.app:create_app`.

    session-events ──▶ ToolCallHandler ──▶ tool_results (Mongo, kept results)
       (ToolCallRequested,  │  └─ ToolCaller: breaker per server → MCP session → tools/call
        runs_on mcp:*)      └──▶ turns (RecordToolResult)
    session-events ──▶ SessionEventsWatcher ──▶ stops calls whose turn or session ended
    session-events ──▶ KeptResultsErasure ──▶ deletes an erased session's kept tool results
    retention job ──▶ tool_results

The shared runtime's key-ordered consumer runs calls of different sessions concurrently
(bounded by max_in_flight); one session's calls run one after another.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faststream import FastStream
from pymongo import AsyncMongoClient

from contracts.topics import Service, TopicName
from services.runtime import Record, ServiceRuntime
from services.runtime.kept_results_erasure import KeptResultsErasure, is_erasure
from services.runtime.retention import RetentionJob
from services.runtime.retry import Backoff
from services.runtime.session_watch import SessionEventsWatcher
from services.runtime.settings_errors import built, load_settings
from services.tool_invocation.handler import ToolCallHandler, is_tool_call_request
from services.tool_invocation.mcp_servers import McpServers
from services.tool_invocation.result_store import KeptToolResults, ToolCallClaims
from services.tool_invocation.settings import ToolInvocationSettings
from services.tool_invocation.tool_caller import ToolCaller, ToolRetryPolicy, server_breakers


@dataclass(frozen=True, slots=True)
class ToolInvocationService:
    settings: ToolInvocationSettings
    runtime: ServiceRuntime
    mongo: AsyncMongoClient[dict[str, Any]]
    results: KeptToolResults
    caller: ToolCaller
    handler: ToolCallHandler
    retention: RetentionJob
    watcher: SessionEventsWatcher


def build(
    settings: ToolInvocationSettings | None = None, *, configure_logs: bool = True
) -> ToolInvocationService:
    settings = settings or ToolInvocationSettings()
    # A bad servers file stops the service at start, naming the file and the server.
    servers = McpServers.load(settings.mcp_servers_file)
    runtime = ServiceRuntime(Service.TOOL_INVOCATION.value, settings, configure_logs=configure_logs)
    topics = settings.topics
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    results = KeptToolResults(mongo[settings.mongodb_database])
    caller = ToolCaller(
        servers,
        breakers=server_breakers(
            threshold=settings.tool_circuit_threshold,
            ttl_s=settings.tool_circuit_ttl_s,
            first_trial_s=settings.tool_circuit_first_trial_s,
        ),
        retry=ToolRetryPolicy(
            max_attempts=settings.tool_max_attempts,
            backoff=Backoff(
                initial_s=settings.tool_retry_initial_backoff_s,
                max_s=settings.tool_retry_max_backoff_s,
            ),
        ),
        max_content_chars=settings.tool_max_result_chars,
    )
    handler = ToolCallHandler(
        caller=caller,
        results=results,
        claims=ToolCallClaims(results, lease_s=settings.tool_claim_lease_s),
        publish=runtime.publish,
        turns_topic=topics.name(TopicName.TURNS),
    )
    retention = RetentionJob(
        "tool_results",
        results.delete_kept_before,
        retention=timedelta(hours=settings.tool_result_retention_hours),
        interval_s=settings.tool_result_retention_interval_s,
    )
    erasure = KeptResultsErasure(results, "tool")
    watcher = SessionEventsWatcher(
        settings,
        topics.name(TopicName.SESSION_EVENTS),
        handler.running,
        handler.cancelled,
        lookback_s=settings.tool_cancellation_lookback_s,
        client_id=settings.client_id("tool-invocation.session-watch"),
        # A call whose turn is over (closed, erased, expired, past its deadline) is not run.
        ended=handler.ended,
    )

    def concerns(record: Record) -> bool:
        """Tool-call requests and erasures: the other session facts (most of a turn's) are done
        at once, without a key task, a span or a handler call (docs/runtime.md, `accepts`)."""
        return is_tool_call_request(record) or is_erasure(record)

    @runtime.consumer(
        topics.name(TopicName.SESSION_EVENTS),
        group_id=settings.tool_consumer_group,
        accepts=concerns,
    )
    async def invoke_tool(record: Record) -> None:
        """ToolCallRequested (runs_on mcp:*) → the tool called → RecordToolResult on turns;
        SessionErased → the session's kept tool results deleted; other facts skipped."""
        await handler(record)
        await erasure(record)

    async def mongo_answers() -> bool:
        await mongo.admin.command("ping")
        return True

    runtime.add_readiness_check("mongo", mongo_answers)
    runtime.app.on_startup(results.ensure_indexes)
    runtime.app.on_startup(watcher.start)
    # Cancellations read back before the first call (a redelivery after a crash).
    runtime.app.on_startup(watcher.caught_up)
    runtime.app.after_shutdown(watcher.stop)
    runtime.app.after_startup(retention.start)
    runtime.app.on_shutdown(retention.stop)
    runtime.app.after_shutdown(caller.close)
    runtime.app.after_shutdown(mongo.close)
    return ToolInvocationService(
        settings, runtime, mongo, results, caller, handler, retention, watcher
    )


def create_app() -> FastStream:
    """The app, built when called (`faststream run --factory`): importing this module builds
    nothing and reads no environment.
    A bad setting or configuration file exits 2 with one line naming it, as under `python -m`
    (FastStream's CLI would print a traceback and exit 1)."""
    settings = load_settings(ToolInvocationSettings, "tool-invocation")
    return built("tool-invocation", lambda: build(settings)).runtime.app
