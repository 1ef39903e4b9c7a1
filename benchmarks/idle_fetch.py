"""What an idle consumer costs, and how late a record reaches it: FastStream's batch fetch
against the runtime's (services/runtime/fetch_loop.py), side by side.

    .venv/bin/python benchmarks/idle_fetch.py [--waits 10,100] [--seconds 8] [--records 20]
        [--bootstrap 127.0.0.1:9092]

For each variant and `fetch_wait_ms`, one ServiceRuntime with one consumer of a topic of its
own (12 partitions, deleted after), once it holds its partitions: the process's CPU ms per
second while nothing arrives, then `--records` records produced one at a time at random
moments (0.1-0.3 s apart) and the time from each send's ack to its handler (median / max).
Variants: "faststream" keeps FastStream's `get_msg` (an empty poll is followed by a sleep as
long), "runtime" is what the services run. Runs are interleaved and printed at the end.
"""

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid

from aiokafka import AIOKafkaProducer

from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.runtime import Record, RuntimeSettings, ServiceRuntime


async def _measure(
    bootstrap: str, variant: str, wait_ms: int, seconds: float, records: int
) -> tuple[float, list[float]]:
    prefix = f"bench-idle-{uuid.uuid4().hex[:6]}."
    catalogue = TopicCatalogue(prefix=prefix)
    spec = next(s for s in catalogue.specs() if s.name == catalogue.name(TopicName.SESSION_EVENTS))
    await ensure_topics(bootstrap, [spec])
    settings = RuntimeSettings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, fetch_wait_ms=wait_ms, health_port=0
    )
    runtime = ServiceRuntime("idle-bench", settings, configure_logs=False)
    waiting: dict[bytes, asyncio.Future[float]] = {}

    @runtime.consumer(spec.name, group_id=f"{prefix}group")
    async def handle(record: Record) -> None:
        arrival = waiting.get(record.value or b"")
        if arrival is not None and not arrival.done():
            arrival.set_result(time.monotonic())

    binding = runtime.consumers[0]
    if variant == "faststream":
        for subscriber in runtime.broker.subscribers:
            del subscriber.get_msg  # type: ignore[attr-defined]  # FastStream's own again
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await runtime.app.start()
    await producer.start()
    try:
        deadline = time.monotonic() + 60
        # Polled: the engine's assignment is state, not an event.
        while not binding.engine.has_assignment and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # settle: the first fetches after the join
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        idle_ms_per_s = (time.process_time() - cpu) / (time.monotonic() - wall) * 1000
        delays: list[float] = []
        rng = random.Random(wait_ms)
        for i in range(records):
            await asyncio.sleep(rng.uniform(0.1, 0.3))
            value = f"{variant}-{wait_ms}-{i}".encode()
            arrival = waiting[value] = asyncio.get_running_loop().create_future()
            await (await producer.send(spec.name, value, key=f"s-{i}".encode()))
            acked = time.monotonic()
            delays.append((await asyncio.wait_for(arrival, 10) - acked) * 1000)
        return idle_ms_per_s, delays
    finally:
        await producer.stop()
        await runtime.app.stop()
        await delete_topics(bootstrap, [spec.name])


async def run(bootstrap: str, waits: list[int], seconds: float, records: int) -> None:
    rows: list[str] = []
    for wait_ms in waits:
        for variant in ("faststream", "runtime"):
            idle, delays = await _measure(bootstrap, variant, wait_ms, seconds, records)
            rows.append(
                f"| {variant} | {wait_ms} | {idle:.1f} | "
                f"{statistics.median(delays):.1f} / {max(delays):.1f} |"
            )
    print(f"One idle consumer of 12 partitions ({seconds:.0f} s idle, {records} records after)")
    print("| fetch | fetch_wait_ms | idle CPU ms/s | ack → handler ms, median / max |")
    print("|---|---|---|---|")
    print("\n".join(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waits", default="10,100")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--records", type=int, default=20)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    args = parser.parse_args()
    waits = [int(w) for w in args.waits.split(",")]
    asyncio.run(run(args.bootstrap, waits, args.seconds, args.records))


if __name__ == "__main__":
    main()
