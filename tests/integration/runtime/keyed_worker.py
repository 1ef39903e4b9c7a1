"""A consumer process for the runtime's integration tests (kill -9, SIGTERM, rebalance).

    python -m tests.integration.runtime.keyed_worker <journal> <group> <topic>...

Runs a `ServiceRuntime` whose handler sleeps a random 5-30 ms, then appends
`done <pid> <topic> <partition> <offset> <key> <monotonic_ns>` to the journal. Every
successful offset commit is journaled as `commit <pid> <topic> <partition> <offset> - <ns>`.
A single `os.write` on an O_APPEND descriptor is atomic and lands in the kernel at once, so
the journal survives kill -9 and interleaves cleanly between processes.
"""

import asyncio
import os
import random
import sys
import time
from typing import Any

import aiokafka

from services.runtime import Record, RuntimeSettings, ServiceRuntime

_fd = -1


def journal(*fields: object) -> None:
    line = " ".join(str(f) for f in (*fields, time.monotonic_ns())) + "\n"
    os.write(_fd, line.encode())


def _journal_commits() -> None:
    original = aiokafka.AIOKafkaConsumer.commit

    async def commit(self: Any, offsets: Any = None) -> None:
        await original(self, offsets)
        for tp, offset in (offsets or {}).items():
            journal("commit", os.getpid(), tp.topic, tp.partition, offset, "-")

    aiokafka.AIOKafkaConsumer.commit = commit


async def main(path: str, group: str, topics: list[str]) -> None:
    global _fd
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _journal_commits()
    settings = RuntimeSettings(
        commit_interval_s=0.2,
        health_port=0,
        max_in_flight=int(os.environ.get("WORKER_MAX_IN_FLIGHT", "64")),
        drain_timeout_s=10,
        rebalance_drain_timeout_s=10,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        log_format="json" if os.environ.get("WORKER_JSON_LOGS") else "console",
        log_level="INFO" if os.environ.get("WORKER_JSON_LOGS") else "WARNING",
    )
    runtime = ServiceRuntime("keyed-worker", settings)
    rng = random.Random()

    @runtime.consumer(*topics, group_id=group, co_partitioned=True)
    async def handle(record: Record) -> None:
        await asyncio.sleep(rng.uniform(0.005, 0.03))
        journal(
            "done", os.getpid(), record.topic, record.partition, record.offset, record.session_id
        )

    async def started() -> None:
        journal("ready", os.getpid(), "-", "-", "-", "-")

    runtime.app.after_startup(started)
    await runtime.app.run()  # SIGTERM/SIGINT → graceful shutdown
    journal("stopped", os.getpid(), "-", "-", "-", "-")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
