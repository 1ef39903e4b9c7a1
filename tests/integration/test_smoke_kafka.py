"""Smoke test of the real broker: keyed records keep their per-key order through a consumer group."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import TopicFactory

pytestmark = pytest.mark.integration

MESSAGES = 10_000
KEYS = 200  # sessions; 50 records each
PARTITIONS = 12


async def test_keyed_records_arrive_complete_and_in_order_per_key(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    topic = await topic_factory("smoke-ordering", partitions=PARTITIONS)
    group = f"smoke-group-{unique_suffix}"
    consumers = [_consumer(kafka_bootstrap_servers, topic, group) for _ in range(2)]
    for consumer in consumers:
        await consumer.start()
    try:
        # Produce only once the group has settled, so no rebalance replays records mid-test.
        await _wait_for_assignment(consumers, PARTITIONS)
        await _produce(kafka_bootstrap_servers, topic)
        received = await _consume_all(consumers)
    finally:
        for consumer in consumers:
            await consumer.stop()

    assert sum(len(r) for r in received.values()) == MESSAGES, "lost or duplicated records"
    for key, records in received.items():
        sequence = [seq for _, seq in records]
        assert sequence == list(range(MESSAGES // KEYS)), f"order broken for {key}"
        assert len({partition for partition, _ in records}) == 1, f"{key} spread over partitions"
    await _assert_group_committed_everything(kafka_bootstrap_servers, topic, group)


def _consumer(bootstrap_servers: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=1000,
    )


async def _wait_for_assignment(consumers: list[AIOKafkaConsumer], partitions: int) -> None:
    async with asyncio.timeout(30):
        while True:
            assignments = [c.assignment() for c in consumers]
            covered = set().union(*assignments)
            if len(covered) == partitions and all(assignments):
                return
            await asyncio.sleep(0.1)


async def _produce(bootstrap_servers: str, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = []
        for i in range(MESSAGES):
            key, seq = f"session-{i % KEYS}", i // KEYS
            value = json.dumps({"key": key, "seq": seq}).encode()
            sent.append(await producer.send(topic, value=value, key=key.encode()))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _consume_all(
    consumers: list[AIOKafkaConsumer],
) -> dict[str, list[tuple[int, int]]]:
    received: dict[str, list[tuple[int, int]]] = defaultdict(list)
    total = 0
    async with asyncio.timeout(90):
        while total < MESSAGES:
            for consumer in consumers:
                batches = await consumer.getmany(timeout_ms=100)
                for tp, records in batches.items():
                    for record in records:
                        body = json.loads(record.value)
                        received[body["key"]].append((tp.partition, body["seq"]))
                        total += 1
                if batches:
                    await consumer.commit()  # past the records just handled, never before
    return received


async def _assert_group_committed_everything(
    bootstrap_servers: str, topic: str, group: str
) -> None:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        end_offsets = await probe.end_offsets(partitions)
        committed = {tp: await probe.committed(tp) for tp in partitions}
    finally:
        await probe.stop()
    assert committed == end_offsets
    assert sum(end_offsets.values()) == MESSAGES
