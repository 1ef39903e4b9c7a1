"""Wiring of the audit service: `python -m services.audit` or
`faststream run --factory services.audit.app:create_app`.

    source topics ──▶ AuditHandler (handler.py) ──▶ audit_log (Mongo) ──▶ audit topic
                                                 └─▶ domain metrics (fact_metrics.py)
                                                 retention job ──▶ audit_log

One consumer in audit's own group reads the six audited topics; the shared runtime orders
each session's records, commits past finished ones, retries outages and dead-letters records
that do not decode (except dead letters themselves: handler.py).
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faststream import FastStream
from pymongo import AsyncMongoClient

from contracts.topics import Service, TopicName
from services.audit.audit_log import MongoAuditLog
from services.audit.audit_topic import AuditTopic
from services.audit.fact_metrics import FactMetrics
from services.audit.handler import AUDITED_TOPICS, AuditHandler
from services.audit.llm_prices import load_prices
from services.audit.settings import AuditSettings
from services.runtime import Record, ServiceRuntime
from services.runtime.retention import RetentionJob
from services.runtime.settings_errors import built, load_settings


@dataclass(frozen=True, slots=True)
class AuditService:
    settings: AuditSettings
    runtime: ServiceRuntime
    mongo: AsyncMongoClient[dict[str, Any]]
    log: MongoAuditLog
    handler: AuditHandler
    retention: RetentionJob


def build(settings: AuditSettings | None = None, *, configure_logs: bool = True) -> AuditService:
    settings = settings or AuditSettings()
    runtime = ServiceRuntime(Service.AUDIT.value, settings, configure_logs=configure_logs)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    log = MongoAuditLog(mongo[settings.mongodb_database], settings.audit_log_collection)
    topics = settings.topics
    handler = AuditHandler(
        topics=topics,
        policy=settings.redaction_policy(),
        log=log,
        sink=AuditTopic(topics.name(TopicName.AUDIT), runtime.publish),
        observer=FactMetrics(runtime.registry, load_prices(settings.llm_prices_path)),
    )
    retention = RetentionJob(
        "audit log",
        log.purge_recorded_before,
        retention=timedelta(days=settings.audit_retention_days),
        interval_s=settings.audit_retention_interval_s,
    )

    @runtime.consumer(*topics.names(AUDITED_TOPICS), group_id=settings.audit_consumer_group)
    async def audit_fact(record: Record) -> None:
        """Every fact of the pipeline → one redacted, immutable audit record (CloudEvent)."""
        await handler(record)

    async def mongo_answers() -> bool:
        await mongo.admin.command("ping")
        return True

    runtime.add_readiness_check("mongo", mongo_answers)
    # Indexes before the first record is consumed; the job after start-up; the published
    # marks written and Mongo closed only after the runtime drained the handlers.
    runtime.app.on_startup(log.ensure_indexes)
    runtime.app.after_startup(retention.start)
    runtime.app.on_shutdown(retention.stop)
    runtime.app.after_shutdown(log.flush_published)
    runtime.app.after_shutdown(mongo.close)
    return AuditService(settings, runtime, mongo, log, handler, retention)


def create_app() -> FastStream:
    """The app, built when called (`faststream run --factory`): importing this module (tests,
    the CLI) builds nothing and reads no environment.
    A bad setting or configuration file exits 2 with one line naming it, as under `python -m`
    (FastStream's CLI would print a traceback and exit 1)."""
    settings = load_settings(AuditSettings, "audit")
    return built("audit", lambda: build(settings)).runtime.app
