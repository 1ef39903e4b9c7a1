"""Key-ordered concurrency against one-at-a-time per partition, on the real broker.

    .venv/bin/python benchmarks/keyed_consumer.py [--records 3000] [--bootstrap 127.0.0.1:9092]

Workload: a handler that sleeps 50 ms, 12 partitions, 1,000 keys (session ids).
- key-ordered: the runtime's `ServiceRuntime` consumer (one record per key at a time,
  `--max-in-flight` records per process).
- one-at-a-time per partition: FastStream's own option, `max_workers=12` with
  `AckPolicy.ACK` (12 consumers in the group, each handling one record at a time).
Throughput is measured from the first handled record to the last (group joins excluded).
"""

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.middlewares import AckPolicy

from services.admin.topics import TopicSpec, delete_topics, ensure_topics
from services.runtime import Record, RuntimeSettings, ServiceRuntime

PARTITIONS = 12
KEYS = 1_000
HANDLER_SLEEP_S = 0.05


@dataclass
class Clock:
    expected: int
    handled: int = 0
    first: float = 0.0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def tick(self) -> None:
        now = time.perf_counter()
        if self.handled == 0:
            self.first = now
        self.handled += 1
        self.last = now
        if self.handled >= self.expected:
            self.done.set()

    @property
    def throughput(self) -> float:
        return (self.handled - 1) / (self.last - self.first) if self.handled > 1 else 0.0


async def produce(bootstrap: str, topic: str, records: int) -> None:
    rng = random.Random(42)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, b"{}", key=f"session-{rng.randrange(KEYS)}".encode())
            for _ in range(records)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run_until_done(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], clock: Clock
) -> None:
    await start()
    try:
        await asyncio.wait_for(clock.done.wait(), 600)
    finally:
        await stop()


async def key_ordered(bootstrap: str, topic: str, records: int, max_in_flight: int) -> Clock:
    clock = Clock(records)
    settings = RuntimeSettings(
        kafka_bootstrap_servers=bootstrap,
        max_in_flight=max_in_flight,
        health_port=0,
        log_level="WARNING",
        log_format="console",
    )
    runtime = ServiceRuntime("bench-keyed", settings, configure_logs=False)

    @runtime.consumer(topic, group_id=f"bench-keyed-{uuid.uuid4().hex[:8]}")
    async def handle(record: Record) -> None:
        await asyncio.sleep(HANDLER_SLEEP_S)
        clock.tick()

    await run_until_done(runtime.app.start, runtime.app.stop, clock)
    return clock


async def per_partition(bootstrap: str, topic: str, records: int) -> Clock:
    clock = Clock(records)
    broker = KafkaBroker(bootstrap)
    app = FastStream(broker)

    @broker.subscriber(
        topic,
        group_id=f"bench-partition-{uuid.uuid4().hex[:8]}",
        max_workers=PARTITIONS,
        ack_policy=AckPolicy.ACK,
        auto_offset_reset="earliest",
    )
    async def handle(body: object) -> None:
        await asyncio.sleep(HANDLER_SLEEP_S)
        clock.tick()

    await run_until_done(app.start, app.stop, clock)
    return clock


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--records", type=int, default=3_000)
    parser.add_argument("--max-in-flight", type=int, default=256)
    args = parser.parse_args()

    topic = f"bench.keyed-consumer.{uuid.uuid4().hex[:8]}"
    await ensure_topics(args.bootstrap, [TopicSpec(topic, PARTITIONS)])
    try:
        await produce(args.bootstrap, topic, args.records)
        print(
            f"workload: {args.records} records, {PARTITIONS} partitions, {KEYS} keys, "
            f"handler sleeps {HANDLER_SLEEP_S * 1000:.0f} ms"
        )
        baseline = await per_partition(args.bootstrap, topic, args.records)
        print(
            f"one-at-a-time per partition (FastStream max_workers={PARTITIONS}): "
            f"{baseline.throughput:8.1f} records/s  ({baseline.handled} handled)"
        )
        keyed = await key_ordered(args.bootstrap, topic, args.records, args.max_in_flight)
        print(
            f"key-ordered concurrent (max_in_flight={args.max_in_flight}):        "
            f"{keyed.throughput:8.1f} records/s  ({keyed.handled} handled)"
        )
        print(f"ratio key-ordered / per-partition: {keyed.throughput / baseline.throughput:.1f}x")
    finally:
        await delete_topics(args.bootstrap, [topic])


if __name__ == "__main__":
    asyncio.run(main())
