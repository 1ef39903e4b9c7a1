"""The tool deadline job: a turn awaiting tool results past its round's deadline fails.

Like the expiry job (expiry.py) it only finds and publishes: `ExpireToolCalls` goes to `turns`,
and the partition owner decides it in order with the session's other commands, so a result
that arrived first wins. Every instance runs it; the command id is derived from the turn and
its step, so repeats from several instances or passes are one effect.
"""

import logging
from collections.abc import Callable
from datetime import datetime

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.base import derive_id, utc_now
from contracts.codec import encode
from contracts.topics import Service
from contracts.turns import ExpireToolCalls
from services.runtime.periodic import PeriodicJob
from services.runtime.publishing import Publish
from services.session_commands.mongo.repository import SESSIONS
from services.session_commands.mongo.session_document import Document

log = logging.getLogger(__name__)


class ToolDeadlines:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        publish: Publish,
        *,
        turns_topic: str,
        batch_size: int = 1_000,
        interval_s: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = database[SESSIONS]
        self._publish = publish
        self._turns_topic = turns_topic
        self._batch_size = batch_size
        self._clock = clock
        self._schedule = PeriodicJob(
            "tool deadline pass", self.publish_expirations, interval_s=interval_s, log=log
        )

    async def publish_expirations(self) -> int:
        """ExpireToolCalls for up to `batch_size` overdue tool rounds; returns how many."""
        cursor = (
            self._sessions.find(
                {"tool_deadline": {"$ne": None, "$lt": self._clock()}},
                {"tenant_id": 1, "state.turn.turn_id": 1, "state.turn.step": 1},
            )
            .sort("tool_deadline", ASCENDING)
            .limit(self._batch_size)
        )
        published = 0
        for document in await cursor.to_list(None):
            turn = document["state"]["turn"]
            command = ExpireToolCalls(
                id=derive_id("expire-tools", document["_id"], turn["turn_id"], turn["step"]),
                session_id=document["_id"],
                tenant_id=document["tenant_id"],
                turn_id=turn["turn_id"],
                step=turn["step"],
            )
            record = encode(command, source=Service.EXPIRY_JOB.value, correlation_id=command.id)
            await self._publish(self._turns_topic, record)
            published += 1
        if published:
            log.info("tool deadline pass: %d rounds expired", published)
        return published

    async def start(self) -> None:
        await self._schedule.start()

    async def stop(self) -> None:
        await self._schedule.stop()
