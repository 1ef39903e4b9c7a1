"""Many sessions at once, then a replay of every command from offset 0.

1,000 sessions x 20 commands, interleaved across sessions on the topic (round-robin), produced
by one producer and applied by the service in this process. Every history must hold exactly
the submitted messages in the submitted order, without duplicates; replaying the whole topic
with a new consumer group on the same database must change nothing.
"""

import asyncio
import time
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient

from contracts.commands import CreateSession, SubmitUserMessage
from contracts.topics import TopicName
from services.session_commands.mongo.session_document import Document
from tests.integration.service_harness import Publisher, TopicReader, wait_caught_up
from tests.integration.session_commands.harness import (
    provisioned_topics,
    running,
    settings_for,
)

pytestmark = [pytest.mark.integration]

SESSIONS = 1_000
COMMANDS_PER_SESSION = 20  # one create, 19 messages
SUBMITS = COMMANDS_PER_SESSION - 1
PARTITIONS = 12
TENANT = "tenant-many"


def interleaved_commands() -> list[CreateSession | SubmitUserMessage]:
    commands: list[CreateSession | SubmitUserMessage] = [
        CreateSession(id=f"s{i}-create", session_id=f"s{i}", tenant_id=TENANT)
        for i in range(SESSIONS)
    ]
    for n in range(SUBMITS):
        for i in range(SESSIONS):
            commands.append(
                SubmitUserMessage(
                    id=f"s{i}-c{n}",
                    session_id=f"s{i}",
                    tenant_id=TENANT,
                    message_id=f"s{i}-m{n}",
                    content=f"session {i} message {n}",
                )
            )
    return commands


# Per session: SessionCreated, then UserMessageAccepted per message, plus one TurnStarted for
# the first message (nobody completes turns here: the others wait in the queue, in order).
EXPECTED_EVENTS = SESSIONS * (1 + SUBMITS + 1)


async def histories(database: Any) -> dict[str, list[tuple[int, str]]]:
    result: dict[str, list[tuple[int, str]]] = {}
    cursor = database["messages"].find({}, {"session_id": 1, "seq": 1, "message_id": 1})
    for doc in await cursor.sort([("session_id", ASCENDING), ("seq", ASCENDING)]).to_list(None):
        result.setdefault(doc["session_id"], []).append((doc["seq"], doc["message_id"]))
    return result


async def test_a_thousand_sessions_keep_their_order_and_a_replay_changes_nothing(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    prefix = f"many-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        prefix,
        f"many-{unique_suffix}",
        max_queued_messages=SUBMITS,
    )
    commands = interleaved_commands()
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    database = mongo[mongo_database_name]
    try:
        async with (
            provisioned_topics(kafka_bootstrap_servers, prefix, PARTITIONS) as catalogue,
            TopicReader(
                kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)
            ) as events,
        ):
            commands_topic = catalogue.name(TopicName.COMMANDS)
            async with Publisher(kafka_bootstrap_servers) as publisher:
                await publisher.send(commands_topic, *commands)

            started = time.monotonic()
            async with running(settings):
                await events.wait_for(
                    lambda m: len(m) >= EXPECTED_EVENTS, "every event", within=240.0
                )
                elapsed = time.monotonic() - started
                print(
                    f"\n{len(commands)} commands applied in {elapsed:.1f}s "
                    f"({len(commands) / elapsed:.0f}/s)"
                )
                await wait_caught_up(
                    kafka_bootstrap_servers, settings.session_commands_consumer_group,
                    [commands_topic], PARTITIONS,
                )  # fmt: skip

            ids = [m.id for m in events.messages]
            assert len(set(ids)) == EXPECTED_EVENTS
            first = await histories(database)
            assert len(first) == SESSIONS
            for i in range(SESSIONS):
                expected = [(n + 1, f"s{i}-m{n}") for n in range(SUBMITS)]
                assert first[f"s{i}"] == expected, f"history of s{i}"

            # Replay: a new consumer group reads every command again from offset 0.
            replay = settings.model_copy(
                update={"session_commands_consumer_group": f"replay-{unique_suffix}"}
            )
            async with running(replay):
                await wait_caught_up(
                    kafka_bootstrap_servers, replay.session_commands_consumer_group,
                    [commands_topic], PARTITIONS, within=240.0,
                )  # fmt: skip
            await events.settle(quiet_for=2.0)
            assert len(events.messages) == EXPECTED_EVENTS, "the replay published events"
            assert await histories(database) == first
            assert await database["sessions"].count_documents({"outbox.0": {"$exists": True}}) == 0
    finally:
        await mongo.close()
        await asyncio.sleep(0)
