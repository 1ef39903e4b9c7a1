"""Wiring of session-commands: `python -m services.session_commands` or
`faststream run --factory services.session_commands.app:create_app`.

    commands ─┐  (co-partitioned,                     ┌─▶ MongoDB: sessions, messages
              ├─▶ SessionCommandHandler (decide) ─────┤
    turns ────┘   range assignment)                   └─▶ session-events
                  expiry job ──▶ turns (ExpireSession); retention ──▶ MongoDB
                  tool deadline job ──▶ turns (ExpireToolCalls)

The single writer of session state: one consumer group reads both command topics with range
assignment, so the instance that owns partition p of `commands` owns partition p of `turns`
(equal partition counts), and with it every session hashed there.
"""

import logging
from dataclasses import dataclass

from faststream import FastStream
from pymongo import AsyncMongoClient

from contracts.topics import Service, TopicCatalogue, TopicName
from services.runtime import Record, ServiceRuntime
from services.runtime.settings_errors import built, load_settings
from services.session_commands.command_sources import CommandSources
from services.session_commands.crash_hook import CrashAfterWrites, no_crash
from services.session_commands.expiry import SessionExpiry
from services.session_commands.handler import INPUTS, SessionCommandHandler
from services.session_commands.mongo.queries import SessionQueries
from services.session_commands.mongo.repository import SessionRepository
from services.session_commands.mongo.session_document import Document
from services.session_commands.session_cache import SessionCache
from services.session_commands.settings import SessionCommandsSettings
from services.session_commands.tool_deadlines import ToolDeadlines

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionCommandsService:
    settings: SessionCommandsSettings
    topics: TopicCatalogue
    runtime: ServiceRuntime
    mongo: AsyncMongoClient[Document]
    repository: SessionRepository
    handler: SessionCommandHandler
    expiry: SessionExpiry
    queries: SessionQueries
    tool_deadlines: ToolDeadlines


def build(
    settings: SessionCommandsSettings | None = None,
    *,
    configure_logs: bool = True,
    run_expiry_job: bool = True,
) -> SessionCommandsService:
    settings = settings or SessionCommandsSettings()
    runtime = ServiceRuntime(
        Service.SESSION_COMMANDS.value, settings, configure_logs=configure_logs
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    database = mongo[settings.mongodb_database]
    topics = settings.topics
    repository = SessionRepository(database, processed_ids_limit=settings.processed_command_ids)
    crash = settings.crash_after_writes
    sources = CommandSources(settings.command_sources)
    if not sources.enforced:
        log.warning(
            "AGENT_RUNTIME_COMMAND_SOURCES is not set: any publisher may act for any tenant "
            "(fine locally; bind sources to tenants in production, docs/security.md)"
        )
    handler = SessionCommandHandler(
        topics=topics,
        repository=repository,
        publish=runtime.publish,
        publish_many=runtime.publish_many,
        policy=settings.decider_policy(),
        after_write=CrashAfterWrites(crash) if crash is not None else no_crash,
        cache=SessionCache(settings.session_cache_size),
        sources=sources,
    )
    expiry = SessionExpiry(
        database,
        runtime.publish,
        turns_topic=topics.name(TopicName.TURNS),
        ttl=settings.session_ttl,
        retention=settings.expired_retention,
        batch_size=settings.expiry_batch_size,
        interval_s=settings.expiry_interval_s,
    )
    tool_deadlines = ToolDeadlines(
        database,
        runtime.publish,
        turns_topic=topics.name(TopicName.TURNS),
        batch_size=settings.expiry_batch_size,
        interval_s=settings.tool_deadline_interval_s,
    )

    @runtime.consumer(
        *topics.names(INPUTS),
        group_id=settings.session_commands_consumer_group,
        co_partitioned=True,
    )
    async def apply_command(record: Record) -> None:
        """Session commands and turn commands → session state in MongoDB → session events."""
        await handler(record)

    async def mongo_answers() -> bool:
        await mongo.admin.command("ping")
        return True

    async def start_expiry() -> None:
        if run_expiry_job:
            await expiry.start()
        await tool_deadlines.start()

    runtime.add_readiness_check("mongo", mongo_answers)
    # Indexes before the first record; the job after start-up; Mongo closed only after the
    # runtime drained the handlers that still write to it.
    runtime.app.on_startup(repository.ensure_indexes)
    runtime.app.after_startup(start_expiry)
    runtime.app.on_shutdown(expiry.stop)
    runtime.app.on_shutdown(tool_deadlines.stop)
    runtime.app.after_shutdown(handler.settle)  # the outbox clears still under way
    runtime.app.after_shutdown(mongo.close)
    return SessionCommandsService(
        settings,
        topics,
        runtime,
        mongo,
        repository,
        handler,
        expiry,
        SessionQueries(database),
        tool_deadlines,
    )


def create_app() -> FastStream:
    """The app, built when called (`faststream run --factory`): importing this module (tests,
    the CLI) builds nothing and reads no environment.
    A bad setting or configuration file exits 2 with one line naming it, as under `python -m`
    (FastStream's CLI would print a traceback and exit 1)."""
    settings = load_settings(SessionCommandsSettings, "session-commands")
    return built("session-commands", lambda: build(settings)).runtime.app
