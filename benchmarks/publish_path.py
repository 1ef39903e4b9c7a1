"""CPU per published record: `ServiceRuntime.publish` against aiokafka's producer alone.

    .venv/bin/python benchmarks/publish_path.py [--records 3000] [--reps 4]
        [--bootstrap 127.0.0.1:9092]

Both publish the same records (1.3 kB values, audit-like CloudEvent headers, 300 session keys
as long as a session id) to a topic of their own (12 partitions, deleted after), all at once as
concurrent handlers do,
with the runtime's producer settings (acks=all, idempotent, linger 1 ms, 256 KiB batches), and
wait for every ack. Printed: the process's CPU µs per record, every repetition (interleaved),
so the difference is what the runtime's publish path (its own producer, record_producer.py, with
the session partitioner, partitioning.py) adds to or saves on aiokafka's per record with
aiokafka's default partitioner.
"""

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer

from contracts.codec import EncodedRecord
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.runtime import RuntimeSettings, ServiceRuntime

HEADERS = [
    ("ce_id", b"01J0000000000000000000000A"),
    ("ce_type", b"audit.record.v1"),
    ("ce_source", b"audit"),
    ("ce_subject", b"session-1"),
    ("content-type", b"application/cloudevents+json"),
    ("traceparent", b"00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"),
]


async def run(bootstrap: str, records: int, reps: int) -> None:
    prefix = f"bench-publish-{uuid.uuid4().hex[:6]}."
    catalogue = TopicCatalogue(prefix=prefix)
    spec = next(s for s in catalogue.specs() if s.name == catalogue.name(TopicName.AUDIT))
    await ensure_topics(bootstrap, [spec])
    settings = RuntimeSettings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    runtime = ServiceRuntime("bench", settings, configure_logs=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.producer_linger_ms,
        max_batch_size=settings.producer_max_batch_bytes,
    )
    sessions = [uuid.uuid4() for _ in range(300)]
    batch = [
        EncodedRecord(key=str(sessions[i % 300]).encode(), value=b"x" * 1300, headers=HEADERS)
        for i in range(records)
    ]

    async def through_runtime() -> None:
        await asyncio.gather(*(runtime.publish(spec.name, r) for r in batch))

    async def through_aiokafka() -> None:
        async def one(record: EncodedRecord) -> None:
            ack = await producer.send(
                spec.name, record.value, key=record.key, headers=record.headers
            )
            await ack

        await asyncio.gather(*(one(r) for r in batch))

    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "ServiceRuntime.publish": through_runtime,
        "aiokafka producer alone": through_aiokafka,
    }
    await runtime.producer.start()
    await producer.start()
    try:
        for publish in variants.values():  # warm-up: metadata, connections, producer ids
            await publish()
        costs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(reps):
            for name, publish in variants.items():
                started = time.process_time()
                await publish()
                costs[name].append((time.process_time() - started) / records * 1e6)
    finally:
        await producer.stop()
        await runtime.producer.stop()
        await delete_topics(bootstrap, [spec.name])
    print(f"CPU µs per published record ({records:,} at once, {reps} interleaved repetitions)")
    print("| path | each repetition | min |")
    print("|---|---|---|")
    for name, values in costs.items():
        print(f"| {name} | {' / '.join(f'{v:.0f}' for v in values)} | {min(values):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=3_000)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.records, args.reps))


if __name__ == "__main__":
    main()
