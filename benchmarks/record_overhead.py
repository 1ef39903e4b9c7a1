"""What the runtime costs per record before any handler work: CPU µs per record, side by side.

    .venv/bin/python benchmarks/record_overhead.py [--records 20000] [--reps 5]

In one process, no broker: records go through `KeyOrderedConsumer.dispatch_batch` in fetches
of 100 (12 partitions, 300 keys) to a handler that does nothing, in these set-ups:
- runtime: as a service runs it: the record's span and log context (`traced`, with the tracer
  the service makes when nothing exports: sampling off, so the span is made on demand) and
  the consumer's metrics;
- runtime, traceparent asked: the same, and the handler asks for the `traceparent` its
  publishes would carry (what a handler that publishes pays: the span is then made);
- eager span (before): the runtime as it was, the unrecorded span started and the log
  context filled for every record (`traced(records_spans=True)` on the same tracer);
- no-op tracer: the eager path with OpenTelemetry's `NoOpTracer` instead;
- no metrics: the runtime's span and log context, no metrics;
- skipped (accepts says no): the runtime, with an `accepts=` filter that refuses every record
  by its `ce_type` header (a consumer that acts on one record type of a busy topic);
- bare: the key-ordered consumer alone (ordering, offsets, commits' bookkeeping).
The best of `--reps` interleaved repetitions is printed (a shared machine only ever adds).
"""

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.trace import NoOpTracer, Tracer
from prometheus_client import CollectorRegistry

from services.runtime.consumer_metrics import ConsumerMetrics, NoMetrics
from services.runtime.keyed_consumer import (
    Accepts,
    ConsumerOptions,
    Handler,
    KeyOrderedConsumer,
)
from services.runtime.record import PartitionId, Record
from services.runtime.telemetry.metrics import RuntimeMetrics
from services.runtime.telemetry.record_span import traced
from services.runtime.telemetry.tracing import (
    configure_tracing,
    current_traceparent,
    records_spans,
)

PARTITIONS = 12
KEYS = 300
FETCH = 100
HEADERS = (
    ("ce_id", b"01J0000000000000000000000A"),
    ("ce_type", b"session.turn_started.v1"),
    ("ce_source", b"session-commands"),
    ("ce_subject", b"session-1"),
    ("traceparent", b"00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"),
)


class _Consumer:
    """The part of aiokafka's consumer the runtime drives; nothing to do here."""

    def assignment(self) -> set[Any]:
        return set()

    def pause(self, *partitions: Any) -> None:
        pass

    def resume(self, *partitions: Any) -> None:
        pass

    async def commit(self, offsets: dict[Any, int]) -> None:
        pass

    def highwater(self, partition: Any) -> int | None:
        return None

    async def position(self, partition: Any) -> int:
        return 0


async def _nothing(record: Record) -> None:
    return None


async def _asks_traceparent(record: Record) -> None:
    assert current_traceparent() is not None


def _refuses(record: Record) -> bool:
    # As a consumer that takes one record type of a shared topic decides (by ce_type).
    return record.header("ce_type") == b"session.erased.v1"


async def _dead_letters(record: Record, error: BaseException, attempts: int) -> None:
    raise AssertionError(f"the handler does nothing, yet {error!r}")


Setup = tuple[Handler, Callable[[], ConsumerMetrics], Accepts | None]


def _setups() -> dict[str, Setup]:
    provider = configure_tracing("bench", otlp_endpoint=None)
    sampled_off: Tracer = provider.get_tracer("bench")
    # As ServiceRuntime wires it: with nothing sampled, the record's span is made on demand.
    deferred = records_spans(provider)

    def metrics() -> ConsumerMetrics:
        return RuntimeMetrics("bench", CollectorRegistry()).for_consumer("g")

    def runtime(handler: Handler, *, records: bool = deferred) -> Handler:
        return traced(handler, sampled_off, consumer_group="g", records_spans=records)

    return {
        "runtime": (runtime(_nothing), metrics, None),
        "runtime, traceparent asked": (runtime(_asks_traceparent), metrics, None),
        "eager span (before)": (runtime(_nothing, records=True), metrics, None),
        "no-op tracer": (traced(_nothing, NoOpTracer(), consumer_group="g"), metrics, None),
        "no metrics": (runtime(_nothing), NoMetrics, None),
        "skipped (accepts says no)": (runtime(_nothing), metrics, _refuses),
        "bare": (_nothing, NoMetrics, None),
    }


async def _per_record_us(
    handler: Handler, metrics: ConsumerMetrics, accepts: Accepts | None, records: int
) -> float:
    partitions = {PartitionId("bench", p) for p in range(PARTITIONS)}
    fake = _Consumer()
    consumer = KeyOrderedConsumer(
        handler,
        consumer=lambda: fake,
        to_kafka_partition=lambda p: p,
        dead_letters=_dead_letters,
        options=ConsumerOptions(max_in_flight=records + 1, commit_interval_s=3600.0),
        metrics=metrics,
        accepts=accepts,
    )
    consumer.on_partitions_assigned(partitions)
    batch = [
        Record("bench", i % PARTITIONS, i // PARTITIONS, f"s{i % KEYS}".encode(), b"{}", HEADERS)
        for i in range(records)
    ]
    started = time.process_time()
    for first in range(0, records, FETCH):
        await consumer.dispatch_batch(batch[first : first + FETCH])
        await asyncio.sleep(0)  # the fetch loop yields between fetches
    await consumer.stop()  # finishes every record received (stop drains), then commits
    assert consumer.in_flight == 0
    return (time.process_time() - started) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    setups = _setups()
    best: dict[str, float] = {}
    for _ in range(args.reps):
        for name, (handler, metrics, accepts) in setups.items():
            cost = asyncio.run(_per_record_us(handler, metrics(), accepts, args.records))
            best[name] = min(best.get(name, cost), cost)
    bare = best["bare"]
    print(f"CPU µs per record, best of {args.reps} ({args.records:,} records, fetches of {FETCH})")
    print("| set-up | µs per record | over bare |")
    print("|---|---|---|")
    for name, cost in best.items():
        print(f"| {name} | {cost:.1f} | {cost - bare:+.1f} |")


if __name__ == "__main__":
    main()
