"""The runtime in this process against the real broker: ordering at concurrency 100, poison
messages, commits, health."""

import asyncio
import base64
import json
import random
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.codec import decode
from services.runtime import Record, RuntimeSettings, ServiceRuntime
from services.runtime.service_runtime import TopicsMissing
from tests.conftest import TopicFactory
from tests.integration.runtime.harness import committed_reaching, eventually, produce

pytestmark = pytest.mark.integration


def settings_for(bootstrap: str, dead_letters: str, **overrides: object) -> RuntimeSettings:
    return RuntimeSettings(
        kafka_bootstrap_servers=bootstrap,
        dead_letter_topic=dead_letters,
        commit_interval_s=0.2,
        health_port=0,
        log_format="console",
        **overrides,  # type: ignore[arg-type]
    )


async def test_per_key_order_at_concurrency_100_with_random_latency(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    topic = await topic_factory("ordered", 12)
    dead = await topic_factory("dead-letters", 1)
    group = f"order-{unique_suffix}"
    runtime = ServiceRuntime(
        "order-test",
        settings_for(kafka_bootstrap_servers, dead, max_in_flight=100),
        configure_logs=False,
    )
    handled: dict[str, list[int]] = defaultdict(list)
    running: dict[str, int] = defaultdict(int)
    stats = {"now": 0, "peak": 0, "same_key_overlap": 0}
    rng = random.Random(1)

    @runtime.consumer(topic, group_id=group)
    async def handle(record: Record) -> None:
        key = record.session_id or ""
        running[key] += 1
        stats["now"] += 1
        stats["peak"] = max(stats["peak"], stats["now"])
        stats["same_key_overlap"] += running[key] > 1
        await asyncio.sleep(rng.uniform(0.01, 0.1))
        handled[key].append(record.offset)
        running[key] -= 1
        stats["now"] -= 1

    keys = [f"session-{rng.randrange(2000)}" for _ in range(4000)]
    produced = await produce(kafka_bootstrap_servers, topic, keys)
    await runtime.app.start()
    try:
        await eventually(
            lambda: sum(map(len, handled.values())) >= len(produced), 50, "all handled"
        )
        expected: dict[str, list[int]] = defaultdict(list)
        for p in produced:
            expected[p.key].append(p.offset)
        assert dict(handled) == dict(expected)  # each key in offset order, nothing lost
        assert stats["same_key_overlap"] == 0
        # The bound counts records waiting behind a busy key too, so the peak of handlers
        # running at once stays a little under it.
        assert 80 <= stats["peak"] <= 100, f"peak concurrency {stats['peak']}"
        end: dict[tuple[str, int], int] = defaultdict(int)
        for p in produced:
            end[(p.topic, p.partition)] = max(end[(p.topic, p.partition)], p.offset + 1)
        assert await committed_reaching(kafka_bootstrap_servers, group, dict(end), 10) == end
    finally:
        await runtime.app.stop()


async def test_poison_message_goes_to_dead_letters_and_its_partition_keeps_flowing(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    topic = await topic_factory("poison", 1)
    dead = await topic_factory("dead-letters", 1)
    runtime = ServiceRuntime(
        "poison-test", settings_for(kafka_bootstrap_servers, dead), configure_logs=False
    )
    handled: list[int] = []

    @runtime.consumer(topic, group_id=f"poison-{unique_suffix}")
    async def handle(record: Record) -> None:
        if record.value == b"not json {":
            decode(record.value, record.headers)  # raises DecodeError(malformed_json/...)
        handled.append(record.offset)

    before = await produce(kafka_bootstrap_servers, topic, ["s1", "s1"])
    poison = await produce(kafka_bootstrap_servers, topic, ["s1"], value=b"not json {")
    after = await produce(kafka_bootstrap_servers, topic, ["s1", "s1"])
    await runtime.app.start()
    try:
        await eventually(lambda: len(handled) == 4, 30, "the records around the poison one")
        assert handled == [p.offset for p in (*before, *after)]
        letter = await read_one(kafka_bootstrap_servers, dead)
        body = json.loads(letter.value)
        assert body["type"] == "dead_letter.v1"
        assert body["origin_topic"] == topic
        assert body["origin_offset"] == poison[0].offset
        assert body["origin_partition"] == 0
        assert body["session_id"] == "s1"
        assert body["reason"] == "missing_header"  # no CloudEvents headers on it
        assert base64.b64decode(body["original_value_b64"]) == b"not json {"
        assert base64.b64decode(body["original_key_b64"]) == b"s1"
        assert letter.key == b"s1"
        # What the runtime publishes carries no random FastStream `correlation_id` header.
        assert "correlation_id" not in {name for name, _ in letter.headers}
        assert "traceparent" in {name for name, _ in letter.headers}
        group = f"poison-{unique_suffix}"
        committed = await committed_reaching(kafka_bootstrap_servers, group, {(topic, 0): 5}, 10)
        assert committed == {(topic, 0): 5}  # past the dead-lettered record
        status, _ = await http_get(runtime.health.port, "/health/ready")
        assert status == 200  # holds its assignment
        status, metrics = await http_get(runtime.health.port, "/metrics")
        assert "agent_runtime_records_dead_lettered_total{" in metrics
        assert "agent_runtime_records_processed_total{" in metrics
    finally:
        await runtime.app.stop()


async def test_a_consumed_topic_that_does_not_exist_stops_the_start_and_is_not_created(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    # FastStream creates a subscriber's missing topic by default (one partition, no configs),
    # whatever the broker's auto.create.topics.enable: a service started before the topics
    # would break the catalogue's partition count for good.
    dead = await topic_factory("dead-letters", 1)
    missing = f"test.never-created.{unique_suffix}"
    runtime = ServiceRuntime(
        "missing-topic-test", settings_for(kafka_bootstrap_servers, dead), configure_logs=False
    )

    @runtime.consumer(missing, group_id=f"missing-{unique_suffix}")
    async def handle(record: Record) -> None:
        raise AssertionError("nothing to handle")

    try:
        with pytest.raises(TopicsMissing, match=missing):
            await runtime.app.start()
    finally:
        await runtime.app.stop()
        await runtime.producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        assert missing not in await admin.list_topics()
    finally:
        await admin.close()


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    response = (await reader.read()).decode()
    writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split(" ")[1]), body


async def read_one(bootstrap: str, topic: str):  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        return await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
