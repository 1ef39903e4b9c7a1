"""`groups lag`: committed vs end offsets with the member holding each partition; `--max-lag`."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import OffsetAndMetadata

from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from tests.integration.cli.cli_process import run_cli

pytestmark = pytest.mark.integration

PARTITIONS = 3


@dataclass(frozen=True)
class LaggingGroup:
    env: dict[str, str]
    group: str
    topic: str


@pytest.fixture
async def lagging_group(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> AsyncIterator[LaggingGroup]:
    """A live static member of a group on the commands topic: partition 0 committed 5 records
    behind its end, the others at their end."""
    catalogue = TopicCatalogue(prefix=f"cli-lag-{unique_suffix}.", partitions=PARTITIONS)
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    topic = catalogue.name(TopicName.COMMANDS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            for i in range(8):
                await producer.send_and_wait(topic, b"x", key=f"k{i}".encode(), partition=partition)
    finally:
        await producer.stop()
    group = f"{catalogue.prefix}lag-probe"
    member = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap_servers,
        group_id=group,
        client_id="lag-probe-client",
        group_instance_id="lag-probe-1",  # static membership, as AGENT_RUNTIME_INSTANCE_NAME
        enable_auto_commit=False,
    )
    await member.start()
    try:
        deadline = time.monotonic() + 30
        while len(member.assignment()) < PARTITIONS:
            assert time.monotonic() < deadline, "the probe was never assigned its partitions"
            await member.getmany(timeout_ms=200)
        await member.commit(
            {
                TopicPartition(topic, p): OffsetAndMetadata(3 if p == 0 else 8, "")
                for p in range(PARTITIONS)
            }
        )
        env = {
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        }
        yield LaggingGroup(env, group, topic)
    finally:
        await member.stop()
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def test_lag_rows_name_the_member_and_max_lag_sets_the_exit_status(
    lagging_group: LaggingGroup,
) -> None:
    env, group = lagging_group.env, lagging_group.group

    def cli(*args: str) -> tuple[int, str, str]:
        done = run_cli(*args, env=env)
        return done.returncode, done.stdout, done.stderr

    code, stdout, stderr = await asyncio.to_thread(cli, "groups", "lag", "--json")
    assert code == 0, stderr
    rows = [row for row in json.loads(stdout) if row["group"] == group]
    assert sorted((r["partition"], r["committed"], r["end"], r["lag"]) for r in rows) == [
        (0, 3, 8, 5),
        (1, 8, 8, 0),
        (2, 8, 8, 0),
    ]
    for row in rows:
        assert row["topic"] == lagging_group.topic
        assert row["member"]["client_id"] == "lag-probe-client"
        assert row["member"]["member_id"].startswith("lag-probe-1-")
        assert row["member"]["instance"] == "lag-probe-1"
        assert row["member"]["host"]

    code, stdout, stderr = await asyncio.to_thread(
        cli, "groups", "lag", "--group", group, "--max-lag", "4"
    )
    assert code == 6, stderr
    assert f"lag above 4 on 1 partitions (worst: {group} {lagging_group.topic}[0] 5)" in stderr
    fields = [line.split("\t") for line in stdout.splitlines()]
    assert [f[:6] for f in fields] == [
        [group, lagging_group.topic, "0", "3", "8", "5"],
        [group, lagging_group.topic, "1", "8", "8", "0"],
        [group, lagging_group.topic, "2", "8", "8", "0"],
    ]
    assert all(f[6] == "lag-probe-client" for f in fields)
    assert f"{group}: total lag 5 over 3 partitions, 1 members" in stderr

    code, _, stderr = await asyncio.to_thread(
        cli, "groups", "lag", "--group", group, "--max-lag", "5"
    )
    assert code == 0, stderr

    code, _, stderr = await asyncio.to_thread(cli, "groups", "lag", "--group", f"{group}-absent")
    assert code == 4, stderr
    assert "no consumer group" in stderr


async def test_a_partition_held_but_never_committed_lags_by_its_retained_records(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    # The group starts at the earliest offset (the services' auto_offset_reset), so a member
    # stuck on its first records has every retained one still to read: shown as no lag, it
    # passed `--max-lag` while KEDA scaled on it.
    catalogue = TopicCatalogue(prefix=f"cli-lag0-{unique_suffix}.", partitions=2)
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    topic = catalogue.name(TopicName.COMMANDS)
    group = f"{catalogue.prefix}stuck-probe"
    member = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    await admin.start()
    try:
        for i in range(8):
            await producer.send_and_wait(topic, b"x", key=f"k{i}".encode(), partition=0)
        # Retention (here delete-records) removed the first two: 6 are left to read.
        await admin.delete_records(
            {TopicPartition(topic, 0): RecordsToDelete(before_offset=2)}, timeout_ms=30_000
        )
        await member.start()
        deadline = time.monotonic() + 30
        while len(member.assignment()) < 2:
            assert time.monotonic() < deadline, "the probe was never assigned its partitions"
            await member.getmany(timeout_ms=200)
        env = {
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        }

        done = await asyncio.to_thread(
            run_cli, "groups", "lag", "--group", group, "--json", "--max-lag", "5", env=env
        )

        assert done.returncode == 6, done.stderr
        rows = json.loads(done.stdout)
        assert sorted((r["partition"], r["committed"], r["end"], r["lag"]) for r in rows) == [
            (0, None, 8, 6),
            (1, None, 0, 0),
        ]
        assert f"(worst: {group} {topic}[0] 6)" in done.stderr
    finally:
        await member.stop()
        await producer.stop()
        await admin.close()
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])
