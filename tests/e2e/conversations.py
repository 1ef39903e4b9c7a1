"""Drive many conversations at once through the pipeline and collect what they produced.

All user messages of a session are published up front: the session queues them (mid-turn
policy `queue`) and runs them as consecutive turns, so the run exercises per-session ordering
across every service while thousands of records are in flight.
"""

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

from contracts.agents import MessageRole
from contracts.base import derive_id
from contracts.codec import DecodeError, decode, encode
from contracts.commands import Command, CreateSession, SubmitUserMessage
from contracts.session_events import (
    AssistantMessageAppended,
    CommandRejected,
    SessionEvent,
    TurnCompleted,
    TurnFailed,
    UserMessageAccepted,
)
from contracts.topics import TopicCatalogue, TopicName
from services.session_commands.mongo.queries import SessionQueries

E = TypeVar("E", bound=SessionEvent)

USER_PROMPTS = (
    "Implement a function that merges two sorted lists.",
    "The job fails with a timeout error in production, why?",
    "How should we design the architecture for multi-region failover?",
    "What is the difference between a process and a thread?",
    "Write code that retries an HTTP call with backoff.",
)


@dataclass
class Conversation:
    session_id: str
    user_contents: list[str]
    events: list[SessionEvent] = field(default_factory=list)

    @property
    def completed_turns(self) -> int:
        return len({e.turn_id for e in self.events if isinstance(e, TurnCompleted)})

    def problems(self) -> list[str]:
        """Per-session order and completeness, from the session-events stream."""
        found: list[str] = []
        failed = [e for e in self.events if isinstance(e, TurnFailed | CommandRejected)]
        if failed:
            found.append(f"{self.session_id}: {len(failed)} failed/refused: {failed[0]}")
        accepted = _unique(e for e in self.events if isinstance(e, UserMessageAccepted))
        if [e.content for e in accepted] != self.user_contents:
            found.append(f"{self.session_id}: user messages out of order or missing")
        appended = _unique(
            e for e in self.events if isinstance(e, UserMessageAccepted | AssistantMessageAppended)
        )
        seqs = [e.seq for e in appended]
        if sorted(seqs) != list(range(1, 2 * len(self.user_contents) + 1)):
            found.append(f"{self.session_id}: history seqs {sorted(seqs)} have gaps/duplicates")
        return found


def _unique(events: Iterable[E]) -> list[E]:
    seen: set[str] = set()
    result: list[E] = []
    for event in events:
        if event.id not in seen:  # redelivery after a crash may repeat an event: same id
            seen.add(event.id)
            result.append(event)
    return result


def plan(run_id: str, sessions: int, turns: int) -> list[Conversation]:
    return [
        Conversation(
            session_id=f"{run_id}-s{index:04d}",
            user_contents=[
                f"[{t}] {USER_PROMPTS[(index + t) % len(USER_PROMPTS)]}" for t in range(turns)
            ],
        )
        for index in range(sessions)
    ]


def commands_for(conversation: Conversation, tenant_id: str) -> list[Command]:
    session_id = conversation.session_id
    ids = {"session_id": session_id, "tenant_id": tenant_id}
    result: list[Command] = [
        CreateSession(id=derive_id("cmd", session_id, "create"), **ids, title="load")
    ]
    for turn, content in enumerate(conversation.user_contents):
        result.append(
            SubmitUserMessage(
                id=derive_id("cmd", session_id, turn),
                message_id=derive_id("msg", session_id, turn),
                content=content,
                **ids,
            )
        )
    return result


async def publish(bootstrap: str, catalogue: TopicCatalogue, commands: list[Command]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        topic = catalogue.name(TopicName.COMMANDS)
        futures = []
        for command in commands:
            record = encode(command, source="e2e", correlation_id=command.id)
            futures.append(
                await producer.send(topic, record.value, key=record.key, headers=record.headers)
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class EventCollector:
    """Reads session-events from the beginning into the conversations, in offset order."""

    def __init__(self, bootstrap: str, catalogue: TopicCatalogue, runs: list[Conversation]) -> None:
        self._consumer = AIOKafkaConsumer(
            catalogue.name(TopicName.SESSION_EVENTS),
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self._by_session = {c.session_id: c for c in runs}
        self.counts: dict[str, int] = defaultdict(int)

    async def __aenter__(self) -> "EventCollector":
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 500) -> None:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5_000)
        for records in batches.values():
            for record in records:
                try:
                    message = decode(record.value, list(record.headers)).message
                except DecodeError:
                    continue
                conversation = self._by_session.get(message.session_id)
                if conversation is not None and isinstance(message, SessionEvent):
                    conversation.events.append(message)
                    self.counts[type(message).__name__] += 1

    async def until_all_turns_complete(
        self, runs: list[Conversation], turns: int, timeout_s: float
    ) -> float:
        """Poll until every conversation completed `turns` turns; returns the seconds it took."""
        started = time.monotonic()
        while any(c.completed_turns < turns for c in runs):
            if time.monotonic() - started > timeout_s:
                done = sum(c.completed_turns for c in runs)
                raise AssertionError(
                    f"only {done}/{turns * len(runs)} turns completed in {timeout_s:.0f}s; "
                    f"events seen: {dict(self.counts)}"
                )
            await self.poll()
        return time.monotonic() - started


async def history_problems(
    mongodb_uri: str, database: str, runs: list[Conversation], tenant_id: str
) -> list[str]:
    """What the database holds: every history exactly 1..2N, user messages in submitted order."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    found: list[str] = []
    try:
        queries = SessionQueries(client[database])
        for run in runs:
            page = await queries.history(run.session_id, tenant_id=tenant_id, limit=500)
            seqs = [m.seq for m in page.messages]
            users = [m.content for m in page.messages if m.role is MessageRole.USER]
            if seqs != list(range(1, 2 * len(run.user_contents) + 1)):
                found.append(f"{run.session_id}: stored seqs {seqs}")
            if users != run.user_contents:
                found.append(f"{run.session_id}: stored user messages out of order or missing")
    finally:
        await client.close()
    return found
