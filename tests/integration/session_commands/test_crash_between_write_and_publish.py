"""A crash after the session write and before the publish loses no event.

The service runs as a subprocess with the test hook `AGENT_RUNTIME_CRASH_AFTER_WRITES=2`: it
exits (os._exit, no cleanup, like kill -9) right after its second session write. The write is
durable, its events are not published, its offset is not committed. A restarted service gets
the command again, finds it processed with a non-empty outbox, and publishes the outbox.
"""

import pytest
from pymongo import AsyncMongoClient

from contracts.base import derive_id
from contracts.commands import CreateSession, SubmitUserMessage
from contracts.topics import TopicName
from services.session_commands.crash_hook import CRASH_EXIT_CODE
from services.session_commands.mongo.session_document import Document
from tests.integration.service_harness import Publisher, TopicReader
from tests.integration.session_commands.harness import (
    ServiceProcess,
    provisioned_topics,
    running,
    settings_for,
    type_names,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

S = "crash-1"
TENANT = "tenant-crash"


async def test_events_of_a_write_survive_a_crash_before_their_publish(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    prefix = f"crash-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, prefix, f"crash-{unique_suffix}"
    )
    create = CreateSession(id="crash-create", session_id=S, tenant_id=TENANT)
    first = SubmitUserMessage(
        id="crash-m1", session_id=S, tenant_id=TENANT, message_id="m1", content="one"
    )
    second = SubmitUserMessage(
        id="crash-m2", session_id=S, tenant_id=TENANT, message_id="m2", content="two"
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    database = mongo[mongo_database_name]
    try:
        async with (
            provisioned_topics(kafka_bootstrap_servers, prefix) as catalogue,
            TopicReader(
                kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)
            ) as events,
        ):
            async with Publisher(kafka_bootstrap_servers) as publisher:
                await publisher.send(catalogue.name(TopicName.COMMANDS), create, first, second)

            service = ServiceProcess(settings, AGENT_RUNTIME_CRASH_AFTER_WRITES="2")
            try:
                code = await service.wait_exit(within=90.0)
            finally:
                service.stop()
            assert code == CRASH_EXIT_CODE, f"exit code {code}: {service.stderr()}"

            # The crash landed between the write and the publish: the write is there with its
            # outbox, the events are not on the topic.
            document = await database["sessions"].find_one({"_id": S})
            assert document is not None
            assert document["processed_command_ids"] == ["crash-create", "crash-m1"]
            assert len(document["outbox"]) == 2
            before = await events.settle(quiet_for=1.0)
            assert type_names(before) == ["SessionCreated"]

            async with running(settings):
                after = await events.wait_for(lambda m: len(m) >= 4, "the outbox, then m2")
            assert type_names(after) == [
                "SessionCreated", "UserMessageAccepted", "TurnStarted", "UserMessageAccepted",
            ]  # fmt: skip
            assert [m.id for m in after[1:3]] == [
                derive_id("event", first.id, 0),
                derive_id("event", first.id, 1),
            ]
            assert len({m.id for m in await events.settle(quiet_for=1.0)}) == 4

            document = await database["sessions"].find_one({"_id": S})
            assert document is not None
            assert document["outbox"] == []
            seqs = await database["messages"].find({"session_id": S}).sort("seq").to_list(None)
            assert [(m["seq"], m["message_id"]) for m in seqs] == [(1, "m1"), (2, "m2")]
    finally:
        await mongo.close()
