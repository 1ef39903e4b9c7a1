"""Wiring of session-commands: `faststream run services.session_commands.app:app` or
`python -m services.session_commands`.

    commands ─┐  (co-partitioned,                     ┌─▶ MongoDB: sessions, messages
              ├─▶ SessionCommandHandler (decide) ─────┤
    turns ────┘   range assignment)                   └─▶ session-events
                  expiry job ──▶ turns (ExpireSession); retention ──▶ MongoDB

The single writer of session state: one consumer group reads both command topics with range
assignment, so the instance that owns partition p of `commands` owns partition p of `turns`
(equal partition counts), and with it every session hashed there.
"""

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient

from contracts.topics import Service
from services.runtime import Record, ServiceRuntime
from services.session_commands.crash_hook import CrashAfterWrites, no_crash
from services.session_commands.expiry import SessionExpiry
from services.session_commands.handler import SessionCommandHandler, SessionCommandTopics
from services.session_commands.queries import SessionQueries
from services.session_commands.repository import SessionRepository
from services.session_commands.session_cache import SessionCache
from services.session_commands.session_document import Document
from services.session_commands.settings import SessionCommandsSettings


@dataclass(frozen=True, slots=True)
class SessionCommandsService:
    settings: SessionCommandsSettings
    topics: SessionCommandTopics
    runtime: ServiceRuntime
    mongo: AsyncMongoClient[Document]
    repository: SessionRepository
    handler: SessionCommandHandler
    expiry: SessionExpiry
    queries: SessionQueries


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
    topics = SessionCommandTopics.with_prefix(settings.topic_prefix)
    repository = SessionRepository(database, processed_ids_limit=settings.processed_command_ids)
    crash = settings.crash_after_writes
    handler = SessionCommandHandler(
        topics=topics,
        repository=repository,
        publish=runtime.publish,
        publish_many=runtime.publish_many,
        policy=settings.decider_policy(),
        after_write=CrashAfterWrites(crash) if crash is not None else no_crash,
        cache=SessionCache(settings.session_cache_size),
    )
    expiry = SessionExpiry(
        database,
        runtime.publish,
        turns_topic=topics.turns,
        ttl=settings.session_ttl,
        retention=settings.expired_retention,
        batch_size=settings.expiry_batch_size,
        interval_s=settings.expiry_interval_s,
    )

    @runtime.consumer(
        *topics.inputs, group_id=settings.session_commands_consumer_group, co_partitioned=True
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

    runtime.add_readiness_check("mongo", mongo_answers)
    # Indexes before the first record; the job after start-up; Mongo closed only after the
    # runtime drained the handlers that still write to it.
    runtime.app.on_startup(repository.ensure_indexes)
    runtime.app.after_startup(start_expiry)
    runtime.app.on_shutdown(expiry.stop)
    runtime.app.after_shutdown(mongo.close)
    return SessionCommandsService(
        settings, topics, runtime, mongo, repository, handler, expiry, SessionQueries(database)
    )


def __getattr__(name: str) -> Any:
    # `faststream run services.session_commands.app:app` reads `app`; built on first access so
    # that importing this module (tests, the CLI) builds nothing and reads no environment.
    if name == "app":
        return build().runtime.app
    raise AttributeError(name)
