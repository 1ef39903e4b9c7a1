"""Expiry and retention: the seed's cleanup of sessions inactive for 24 h, without deleting
anything behind the owner's back.

- `publish_expirations` finds sessions (active or closed) inactive longer than the TTL and
  publishes `ExpireSession` to `turns`. The partition owner applies it in order with the
  session's other commands, and only if nothing happened since `last_activity_at`.
- `purge_expired` deletes sessions whose status is `expired` (a terminal state the owner never
  writes again) for longer than the retention, messages first, so no orphan history stays.

Every instance runs the job; duplicates are harmless (the same ExpireSession id per observed
inactivity is deduplicated by the owner, and an expired session is no longer selected).
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.base import derive_id, utc_now
from contracts.codec import encode
from contracts.topics import Service
from contracts.turns import ExpireSession
from services.runtime.periodic import PeriodicJob
from services.runtime.publishing import Publish
from services.session_commands.domain.state import SessionStatus
from services.session_commands.mongo.repository import MESSAGES, SESSIONS
from services.session_commands.mongo.session_document import Document, as_utc

log = logging.getLogger(__name__)


_EXPIRABLE = [SessionStatus.ACTIVE.value, SessionStatus.CLOSED.value]


class SessionExpiry:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        publish: Publish,
        *,
        turns_topic: str,
        ttl: timedelta = timedelta(hours=24),
        retention: timedelta = timedelta(days=7),
        batch_size: int = 1_000,
        interval_s: float = 300.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = database[SESSIONS]
        self._messages = database[MESSAGES]
        self._publish = publish
        self._turns_topic = turns_topic
        self._ttl = ttl
        self._retention = retention
        self._batch_size = batch_size
        self._clock = clock
        self._schedule = PeriodicJob("expiry pass", self.run_once, interval_s=interval_s, log=log)

    async def publish_expirations(self) -> int:
        """One pass: ExpireSession for up to `batch_size` inactive sessions; returns how many."""
        cutoff = self._clock() - self._ttl
        cursor = (
            self._sessions.find(
                {"status": {"$in": _EXPIRABLE}, "last_activity_at": {"$lt": cutoff}},
                {"tenant_id": 1, "last_activity_at": 1},
            )
            .sort("last_activity_at", ASCENDING)
            .limit(self._batch_size)
        )
        published = 0
        for document in await cursor.to_list(None):
            last_activity = as_utc(document["last_activity_at"])
            command = ExpireSession(
                # One id per observed inactivity: re-running the job repeats it, not the effect.
                id=derive_id("expire", document["_id"], last_activity.isoformat()),
                session_id=document["_id"],
                tenant_id=document["tenant_id"],
                last_activity_at=last_activity,
            )
            record = encode(command, source=Service.EXPIRY_JOB.value, correlation_id=command.id)
            await self._publish(self._turns_topic, record)
            published += 1
        return published

    async def purge_expired(self) -> int:
        """Delete up to `batch_size` sessions expired longer than the retention; returns how many."""
        cutoff = self._clock() - self._retention
        cursor = self._sessions.find(
            {"status": SessionStatus.EXPIRED.value, "expired_at": {"$lt": cutoff}}, {"_id": 1}
        ).limit(self._batch_size)
        purged = 0
        for document in await cursor.to_list(None):
            session_id = document["_id"]
            await self._messages.delete_many({"session_id": session_id})
            result = await self._sessions.delete_one(
                {"_id": session_id, "status": SessionStatus.EXPIRED.value}
            )
            purged += result.deleted_count
        return purged

    async def run_once(self) -> tuple[int, int]:
        expired, purged = await self.publish_expirations(), await self.purge_expired()
        if expired or purged:
            log.info(
                "expiry pass: %d expirations published, %d sessions purged",
                expired,
                purged,
                extra={"expirations": expired, "purged": purged},
            )
        return expired, purged

    async def start(self) -> None:
        await self._schedule.start()

    async def stop(self) -> None:
        await self._schedule.stop()
