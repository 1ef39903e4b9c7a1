"""One command in, its events out: decode → load → decide → persist → publish.

The runtime's key-ordered consumer calls `SessionCommandHandler` once per record of `commands`
and `turns` (co-partitioned: this instance owns partition p of both), one record at a time per
session, and commits the offset only after it returns. The sequence, and why it is crash-safe:

1. load the session document (or take it from the cache of documents this instance wrote,
   see session_cache.py); if its outbox is not empty (a crash after step 5 of an earlier
   command), publish it first, then clear it;
2. if the command id was processed already for this session's tenant: done (a redelivery;
   another tenant's command under a processed id is decided, and refused, like any other);
3. decide (pure);
4. insert the message documents the events add (duplicate keys ignored: idempotent);
5. compare-and-set the session document on its version: new state, the command id, and the
   encoded events as the outbox — in one single-document write (4 and 5 are batched with
   other sessions' writes: group_commit.py);
6. publish the outbox, waiting for the broker's acks;
7. clear the outbox, behind: the command returns without waiting for that write (the offset
   may be committed). A later command of the session that reads the database (not the cache)
   first waits for that clear, so it never republishes; `settle()` waits for the clears still
   under way, at shutdown after the drain. A clear that never lands (a crash, an outage) leaves
   an outbox whose records were published: the next load publishes them again, with the same
   ids, which consumers drop.

A crash anywhere before 5 re-runs the command from scratch (same state, same decision, same
ids). A crash after 5 finds the outbox at step 1 of the redelivery and publishes it. A version
conflict at 5 means another writer (a zombie after a rebalance): retry, i.e. reload.

Ack policy, explicitly: done → committed; Mongo or broker unavailable, or a version conflict →
`RetryableError`, raised as such by the repository and `ServiceRuntime.publish` (this session
waits, others flow); undecodable record → any other exception, which the runtime
dead-letters; a valid but refused command → `CommandRejected`, published.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final, Protocol

from contracts.base import utc_now
from contracts.codec import EncodedRecord, decode, encode
from contracts.envelope import Envelope
from contracts.session_events import SessionEvent
from contracts.topics import Service, TopicCatalogue, TopicName
from services.runtime.publishing import Publish, PublishMany
from services.runtime.record import Record
from services.runtime.telemetry.log_context import bind_log_context
from services.runtime.telemetry.tracing import current_traceparent
from services.session_commands.command_sources import CommandSources, PublisherRefusal
from services.session_commands.domain.decider import (
    SessionCommand,
    as_session_command,
    decide,
    refuse_publisher,
)
from services.session_commands.domain.policy import DEFAULT_POLICY, DeciderPolicy
from services.session_commands.domain.state import SessionState
from services.session_commands.metrics import count_published
from services.session_commands.mongo.session_document import StoredSession
from services.session_commands.session_cache import SessionCache

log = logging.getLogger(__name__)

SOURCE = Service.SESSION_COMMANDS.value


INPUTS: Final = (TopicName.COMMANDS, TopicName.TURNS)
"""Co-partitioned: this instance owns partition p of both."""


class SessionStore(Protocol):
    """What the handler needs of the database (repository.py; a fake in unit tests)."""

    async def load(self, session_id: str) -> StoredSession | None: ...

    async def save(
        self,
        previous: StoredSession | None,
        state: SessionState,
        events: Sequence[SessionEvent],
        outbox: Sequence[EncodedRecord],
        command_id: str,
    ) -> StoredSession: ...

    async def clear_outbox(self, stored: StoredSession) -> StoredSession: ...


class KeyMismatch(ValueError):
    """The record's key is not its session id: it may sit on another owner's partition, so
    applying it could race that owner. Dead-lettered, never applied."""


def truncate_to_millis(moment: datetime) -> datetime:
    # MongoDB stores milliseconds; the state's copy and the indexed copy must compare equal
    # (the expiry job hands the indexed one back in ExpireSession.last_activity_at).
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SessionCommandHandler:
    def __init__(
        self,
        *,
        topics: TopicCatalogue,
        repository: SessionStore,
        publish: Publish,
        policy: DeciderPolicy = DEFAULT_POLICY,
        clock: Callable[[], datetime] = utc_now,
        after_write: Callable[[], None] = lambda: None,
        span_traceparent: Callable[[], str | None] = current_traceparent,
        cache: SessionCache | None = None,
        sources: CommandSources | None = None,
        publish_many: PublishMany | None = None,
    ) -> None:
        self._topics = topics
        self._repository = repository
        self._publish = publish
        self._policy = policy
        self._clock = clock
        self._after_write = after_write  # test hook: crash between write and publish
        self._span_traceparent = span_traceparent
        self._cache = cache if cache is not None else SessionCache()
        self._sources = sources if sources is not None else CommandSources(None)
        self._publish_many = publish_many
        self._clearing: dict[str, asyncio.Task[StoredSession]] = {}
        """Each session's outbox clear under way (one at most: its commands run one by one)."""

    async def __call__(self, record: Record) -> None:
        """External and internal commands in; session events (incl. CommandRejected) out."""
        topic = self._topics.input_topic(record.topic, INPUTS)
        decoded = decode(record.value, record.headers, topic=topic)  # DecodeError → dead letter
        command = as_session_command(decoded.message)
        if record.session_id != command.session_id:
            raise KeyMismatch(f"key {record.session_id!r} != session id {command.session_id!r}")
        bind_log_context(turn_id=getattr(command, "turn_id", None))
        refusal = None
        if topic is TopicName.COMMANDS:  # `turns` is written by our own principals only (ACLs)
            source = decoded.envelope.source
            refusal = self._sources.refusal(
                source, command.tenant_id, record.value or b"", record.headers
            )
        if refusal is not None:
            await self._refuse_publisher(command, decoded.envelope, refusal)
        else:
            await self._apply(command, decoded.envelope)

    async def _refuse_publisher(
        self, command: SessionCommand, envelope: Envelope, refusal: PublisherRefusal
    ) -> None:
        decision = refuse_publisher(command, refusal, now=truncate_to_millis(self._clock()))
        await self._publish_all([self._encode(e, command, envelope) for e in decision.events])
        log.warning(
            "command refused: %s (%s)",
            refusal.reason.value,
            refusal.detail,
            extra={"command_id": command.id, "command_type": command.type},
        )

    async def _apply(self, command: SessionCommand, envelope: Envelope) -> None:
        session_id = command.session_id
        try:
            await self._apply_to(command, envelope, fresh=False)
        except BaseException:
            self._cache.drop(session_id)  # whatever happened, the next attempt reads the database
            raise

    async def _apply_to(self, command: SessionCommand, envelope: Envelope, *, fresh: bool) -> None:
        stored = None if fresh else self._cache.get(command.session_id)
        cached = stored is not None
        if stored is None:
            clearing = self._clearing.get(command.session_id)
            if clearing is not None:  # read what it leaves, not an outbox published already
                await asyncio.wait({clearing})
            stored = await self._repository.load(command.session_id)
        if stored is not None and stored.outbox:
            await self._publish_all(stored.outbox)
            stored = self._clear_behind(stored)
        if stored is not None:
            self._cache.put(stored)
            # Another tenant reusing a processed id is not a redelivery: it is refused below
            # like any of its commands (`unknown_session`), not told by silence that it exists.
            if stored.has_processed(command.id) and command.tenant_id == stored.state.tenant_id:
                return
        decision = decide(
            stored.state if stored is not None else None,
            command,
            now=truncate_to_millis(self._clock()),
            policy=self._policy,
        )
        if cached and not decision.remember:
            # No compare-and-set will check the cached state: decide on a fresh read.
            await self._apply_to(command, envelope, fresh=True)
            return
        records = [self._encode(event, command, envelope) for event in decision.events]
        if decision.remember and decision.state is not None:
            saved = await self._repository.save(
                stored, decision.state, decision.events, records, command.id
            )
            self._cache.put(saved)
            self._after_write()
            await self._publish_all(records)
            count_published(decision.events)
            self._cache.put(self._clear_behind(saved))
        else:
            # Nothing to remember: deciding again yields the same events with the same ids.
            await self._publish_all(records)
        if decision.rejection is not None:
            log.info(
                "command refused: %s",
                decision.rejection.value,
                extra={"command_id": command.id, "command_type": command.type},
            )

    def _clear_behind(self, stored: StoredSession) -> StoredSession:
        """Start clearing `stored`'s published outbox and return the session as it will be
        then. Nothing waits for the write: it is one more MongoDB round trip (a group commit)
        that no later step depends on — the next write of the session replaces its document,
        outbox included, and the clear removes only the entries published here."""
        session_id = stored.state.session_id
        task = asyncio.get_running_loop().create_task(
            self._repository.clear_outbox(stored), name="session-outbox-clear"
        )
        self._clearing[session_id] = task
        task.add_done_callback(lambda done: self._cleared(session_id, done))
        return replace(stored, outbox=())

    def _cleared(self, session_id: str, task: asyncio.Task[StoredSession]) -> None:
        if self._clearing.get(session_id) is task:
            del self._clearing[session_id]
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning(
                "outbox not cleared (its records are published; the next load publishes "
                "them again, same ids): %s",
                error,
            )

    async def settle(self, timeout_s: float = 10.0) -> None:
        """Wait for the outbox clears still under way (at shutdown, after the drain)."""
        if self._clearing:
            await asyncio.wait(set(self._clearing.values()), timeout=timeout_s)

    def _encode(
        self, event: SessionEvent, command: SessionCommand, envelope: Envelope
    ) -> EncodedRecord:
        # A publisher's `ce_correlationid` is carried on only up to an id's length: a header of
        # any length would ride on every event of the chain, and an event whose headers push it
        # past the broker's limit can never be published: it stays in the outbox, and every
        # later command of the session fails on it. The chain then begins with this command,
        # as without the header. (Its form is free: the gateway's request ids are carried.)
        return encode(
            event,
            source=SOURCE,
            correlation_id=envelope.chain_correlation_id(command.id),
            causation_id=command.id,
            traceparent=self._span_traceparent() or envelope.traceparent,
        )

    async def _publish_all(self, records: Sequence[EncodedRecord]) -> None:
        # The events of one command must reach the partition in order: sent together and
        # acknowledged together when the runtime can keep the order, else one at a time.
        if self._publish_many is not None:
            await self._publish_many(self._topics.name(TopicName.SESSION_EVENTS), records)
            return
        for record in records:
            await self._publish(self._topics.name(TopicName.SESSION_EVENTS), record)
