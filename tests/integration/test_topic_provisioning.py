"""Topic provisioning against the real broker: explicit partitions and configs, idempotent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

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
    again = await ensure_topics(
        kafka_bootstrap_servers, [TopicSpec(name, 4, config={"retention.ms": "7200000"})]
    )

    assert report.configs_updated == (name,)
    assert again.configs_updated == ()


async def test_a_different_partition_count_is_refused_not_repaired(
    kafka_bootstrap_servers: str, topic_names: list[str]
) -> None:
    name = topic_names[0]
    await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, partitions=6)])

    with pytest.raises(TopicMismatch, match="6 partitions"):
        await ensure_topics(kafka_bootstrap_servers, [TopicSpec(name, partitions=12)])
    assert await _partitions(kafka_bootstrap_servers, name) == 6
