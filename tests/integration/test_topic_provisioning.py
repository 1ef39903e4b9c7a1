"""Topic provisioning against the real broker: explicit partitions and configs, idempotent."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import TopicCatalogue
from services.admin.topic_configs import set_topic_configs, topic_configs
from services.admin.topics import TopicMismatch, TopicSpec, delete_topics, ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def topic_names(kafka_bootstrap_servers: str, unique_suffix: str) -> AsyncIterator[list[str]]:
    names = [f"test.provisioning-{i}.{unique_suffix}" for i in range(2)]
    yield names
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = [n for n in names if n in set(await admin.list_topics())]
    finally:
        await admin.close()
    if existing:
        await delete_topics(kafka_bootstrap_servers, existing)


async def _partitions(bootstrap_servers: str, name: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
    finally:
        await admin.close()
    return len(described["partitions"])


async def test_creates_topics_with_their_partitions_then_changes_nothing(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    specs = [
        TopicSpec(topic_names[0], partitions=12, config={"retention.ms": "3600000"}),
        TopicSpec(topic_names[1], partitions=3),
    ]

    first = await ensure_topics(kafka_bootstrap_servers, specs)
    second = await ensure_topics(kafka_bootstrap_servers, specs)

    assert sorted(first.created) == sorted(topic_names)
    assert second.created == ()
    assert sorted(second.already_present) == sorted(topic_names)
    assert second.configs_updated == ()
    assert await _partitions(kafka_bootstrap_servers, topic_names[0]) == 12
    assert await _partitions(kafka_bootstrap_servers, topic_names[1]) == 3


async def test_config_drift_is_corrected(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    name = topic_names[0]
    await ensure_topics(
        kafka_bootstrap_servers, [TopicSpec(name, 4, config={"retention.ms": "1000"})]
    )

    report = await ensure_topics(
        kafka_bootstrap_servers, [TopicSpec(name, 4, config={"retention.ms": "7200000"})]
    )
    wanted = {"retention.ms": "7200000"}
    assert await _settled_configs(kafka_bootstrap_servers, name, wanted) == wanted
    again = await ensure_topics(
        kafka_bootstrap_servers, [TopicSpec(name, 4, config={"retention.ms": "7200000"})]
    )

    assert report.configs_updated == (name,)
    assert [str(c) for c in report.config_changes] == [f"{name}: retention.ms 1000 -> 7200000"]
    assert again.configs_updated == ()


async def _configs(bootstrap_servers: str, name: str, keys: list[str]) -> dict[str, str | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return await topic_configs(admin, name, keys)
    finally:
        await admin.close()


async def _settled_configs(
    bootstrap_servers: str, name: str, expected: dict[str, str], timeout_s: float = 10.0
) -> dict[str, str | None]:
    """The topic's configs once they show `expected`, or as they are at the timeout.

    A broker answers DescribeConfigs from its metadata cache, which applies a committed change
    a moment after the AlterConfigs response.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        actual = await _configs(bootstrap_servers, name, list(expected))
        if actual == expected or asyncio.get_running_loop().time() > deadline:
            return actual
        await asyncio.sleep(0.05)


async def _set_by_hand(bootstrap_servers: str, name: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await set_topic_configs(admin, {name: configs})
    finally:
        await admin.close()
    assert await _settled_configs(bootstrap_servers, name, configs) == configs


async def test_only_the_drifted_key_changes_and_an_operators_key_is_kept(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    name = topic_names[0]
    managed = {"retention.ms": "3600000", "cleanup.policy": "delete"}
    await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, 2, config=managed)])
    # An operator tunes keys the catalogue does not manage, and someone drifts a managed one.
    await _set_by_hand(
        kafka_bootstrap_servers,
        name,
        {"min.insync.replicas": "1", "max.message.bytes": "2097152", "retention.ms": "60000"},
    )

    report = await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, 2, config=managed)])

    assert [(c.key, c.was, c.now) for c in report.config_changes] == [
        ("retention.ms", "60000", "3600000")
    ]
    expected = {
        "retention.ms": "3600000",
        "cleanup.policy": "delete",
        "min.insync.replicas": "1",
        "max.message.bytes": "2097152",
    }
    assert await _settled_configs(kafka_bootstrap_servers, name, expected) == expected
    # Only describe_configs shows whether a key is a topic override; the legacy AlterConfigs
    # would have dropped max.message.bytes back to the broker default (1048588).
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, None)]
        )
    finally:
        await admin.close()
    overrides = {e[0] for e in response.resources[0][4] if e[1] is not None and not e[4]}
    assert {"max.message.bytes", "min.insync.replicas"} <= overrides


async def test_an_existing_topic_below_the_replication_factor_is_reported_not_changed(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    name = topic_names[0]
    await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, 2, replication_factor=1)])

    report = await ensure_topics(
        kafka_bootstrap_servers, [TopicSpec(name, 2, replication_factor=3)]
    )

    assert report.under_replicated == (
        f"{name} has replication factor 1, the settings say 3: reassign its partitions",
    )


async def test_catalogue_topics_are_durable_by_settings(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    catalogue = TopicCatalogue(prefix=f"test.durable-{unique_suffix}.", partitions=1)
    spec = catalogue.specs()[0]
    try:
        await ensure_topics(kafka_bootstrap_servers, [spec])
        configs = await _configs(
            kafka_bootstrap_servers,
            spec.name,
            ["min.insync.replicas", "unclean.leader.election.enable"],
        )
    finally:
        await delete_topics(kafka_bootstrap_servers, [spec.name])
    assert configs == {"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}


async def test_a_different_partition_count_is_refused_not_repaired(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    name = topic_names[0]
    await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, partitions=6)])

    with pytest.raises(TopicMismatch, match=r"has 6 partitions.*refusing to change"):
        await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, partitions=12)])
    assert await _partitions(kafka_bootstrap_servers, name) == 6


async def test_a_partition_mismatch_creates_no_other_topic(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    # `commands` exists with 6 partitions, `turns` does not: creating `turns` with 12 before
    # refusing would leave a set no run can complete (the advised `--partitions 6` would then
    # refuse the new `turns`) and break the co-partitioning of the two.
    existing, missing = topic_names
    await ensure_topics(kafka_bootstrap_servers, [TopicSpec(existing, partitions=6)])

    with pytest.raises(TopicMismatch, match=r"has 6 partitions"):
        await ensure_topics(
            kafka_bootstrap_servers,
            [TopicSpec(existing, partitions=12), TopicSpec(missing, partitions=12)],
        )
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        assert missing not in set(await admin.list_topics())
    finally:
        await admin.close()
    report = await ensure_topics(
        kafka_bootstrap_servers,
        [TopicSpec(existing, partitions=6), TopicSpec(missing, partitions=6)],
    )
    assert report.created == (missing,)


def _provision(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.admin.topics", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        check=False,
    )


def test_a_topic_the_broker_will_not_create_is_one_line_and_exit_1(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    # A replication factor above the broker count (a production setting run against one
    # broker): the broker's refusal, said in one line, not a traceback in the Job's log.
    provisioned = _provision(
        "--prefix",
        f"test.unreplicable-{unique_suffix}.",
        AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        AGENT_RUNTIME_TOPIC_REPLICATION_FACTOR="3",
    )
    assert provisioned.returncode == 1, provisioned.stderr
    (line,) = provisioned.stderr.strip().splitlines()
    assert line.startswith("topics: creating topic test.unreplicable-"), line
    assert "InvalidReplicationFactorError" in line


def test_an_unreachable_broker_is_one_line_and_exit_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    provisioned = _provision("--bootstrap-servers", closed)
    assert provisioned.returncode == 3, provisioned.stderr
    (line,) = provisioned.stderr.strip().splitlines()
    assert line.startswith(f"topics: cannot reach Kafka at {closed} "), line
