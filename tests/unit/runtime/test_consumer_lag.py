"""Broker lag per partition: the high-water mark of the last fetch minus what the group has
done, reported on the commit tick (never per record), dropped when the partition is revoked."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from services.runtime.keyed_consumer import ConsumerOptions, KeyOrderedConsumer
from services.runtime.record import PartitionId, Record
from services.runtime.telemetry.metrics import RuntimeMetrics
from tests.support.runtime.fake_consumer import FakeKafkaConsumer

pytestmark = pytest.mark.unit

P0 = PartitionId("agent-runtime.commands", 0)
P1 = PartitionId("agent-runtime.commands", 1)


def lag(registry: CollectorRegistry, partition: PartitionId) -> float | None:
    return registry.get_sample_value(
        "agent_runtime_consumer_lag_records",
        {"service": "svc", "group": "g", "topic": partition.topic, "partition": "0"},
    )


async def no_dead_letters(record: Record, error: BaseException, attempts: int) -> None:
    raise AssertionError("no dead letter expected")


def consumer_with(
    registry: CollectorRegistry, fake: FakeKafkaConsumer, release: asyncio.Event
) -> KeyOrderedConsumer:
    async def handler(record: Record) -> None:
        if record.offset == 11:
            await release.wait()

    consumer = KeyOrderedConsumer(
        handler,
        consumer=lambda: fake,
        to_kafka_partition=lambda p: p,
        dead_letters=no_dead_letters,
        options=ConsumerOptions(commit_interval_s=3600.0),
        metrics=RuntimeMetrics("svc", registry).for_consumer("g"),
    )
    consumer.on_partitions_assigned(fake.assigned)
    return consumer


async def test_lag_is_highwater_minus_the_committable_offset_on_the_commit_tick() -> None:
    registry = CollectorRegistry()
    fake = FakeKafkaConsumer(assigned={P0, P1}, highwaters={P0: 20})
    release = asyncio.Event()
    consumer = consumer_with(registry, fake, release)
    for offset in (10, 11, 12):
        await consumer.dispatch(Record(P0.topic, 0, offset, b"a" if offset == 11 else b"b", b"v"))
    await asyncio.sleep(0.01)  # 10 and 12 finish, 11 waits

    assert lag(registry, P0) is None  # nothing reported between ticks
    await consumer.commit()
    assert lag(registry, P0) == 20 - 11  # 11 is the lowest unfinished record
    # P1: assigned but nothing fetched: no figure rather than a made-up one.
    assert (
        registry.get_sample_value(
            "agent_runtime_consumer_lag_records",
            {"service": "svc", "group": "g", "topic": P1.topic, "partition": "1"},
        )
        is None
    )

    release.set()
    await asyncio.sleep(0.01)
    fake.highwaters[P0] = 13
    await consumer.commit()
    assert lag(registry, P0) == 0

    await consumer.on_partitions_revoked({P0})
    assert lag(registry, P0) is None  # the next owner reports it
    await consumer.stop()


async def test_the_commit_follows_the_position_past_offsets_without_records_when_idle() -> None:
    # A transaction marker after record 12: the position is 14, the log end 14.
    registry = CollectorRegistry()
    fake = FakeKafkaConsumer(assigned={P0}, highwaters={P0: 14}, positions={P0: 14})
    release = asyncio.Event()
    release.set()
    consumer = consumer_with(registry, fake, release)
    await consumer.dispatch_batch([Record(P0.topic, 0, 12, b"a", b"v")])
    await asyncio.sleep(0.01)

    fake.positions[P0] = 20  # a fetch handed out records up to 19, not yet tracked
    consumer.fetch_watch.handing_out = True
    await consumer.commit()
    assert fake.committed(P0) == 13  # not past records the runtime has not seen

    fake.positions[P0] = 14
    consumer.fetch_watch.handing_out = False
    await consumer.commit()
    assert fake.committed(P0) == 14
    assert lag(registry, P0) == 0
    await consumer.stop()
