"""Producing keyed records, running worker processes and reading what they journaled."""

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

REPO_ROOT = Path(__file__).resolve().parents[3]

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Produced:
    topic: str
    partition: int
    offset: int
    key: str


async def produce(
    bootstrap: str, topic: str, keys: Iterable[str], value: bytes = b"{}"
) -> list[Produced]:
    """Send one record per key (in order) and wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        keys = list(keys)
        futures = [await producer.send(topic, value, key=k.encode()) for k in keys]
        metas = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Produced(m.topic, m.partition, m.offset, k) for m, k in zip(metas, keys, strict=True)]


async def committed_offsets(bootstrap: str, group: str) -> dict[Partition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        (tp.topic, tp.partition): meta.offset for tp, meta in offsets.items() if meta.offset >= 0
    }


async def committed_reaching(
    bootstrap: str, group: str, expected: dict[Partition, int], within: float
) -> dict[Partition, int]:
    """Poll the group's committed offsets until they equal `expected` (or time runs out)."""
    deadline = asyncio.get_running_loop().time() + within
    committed = await committed_offsets(bootstrap, group)
    while committed != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        committed = await committed_offsets(bootstrap, group)
    return committed


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(0.05)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # ready | done | commit | stopped
    pid: int
    topic: str
    partition: int
    offset: int
    key: str
    at_ns: int


@dataclass
class Journal:
    path: Path
    entries: list[Entry] = field(default_factory=list)

    def read(self) -> "Journal":
        entries = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                kind, pid, topic, partition, offset, key, at = line.split(" ")
                entries.append(
                    Entry(
                        kind,
                        int(pid),
                        topic,
                        int(partition) if partition != "-" else -1,
                        int(offset) if offset != "-" else -1,
                        key,
                        int(at),
                    )
                )
        self.entries = sorted(entries, key=lambda e: e.at_ns)
        return self

    def of(self, kind: str) -> list[Entry]:
        return [e for e in self.read().entries if e.kind == kind]

    def done_set(self) -> set[tuple[str, int, int]]:
        return {(e.topic, e.partition, e.offset) for e in self.of("done")}

    def ready_pids(self) -> set[int]:
        return {e.pid for e in self.of("ready")}


class Worker:
    """One `keyed_worker` process."""

    def __init__(self, journal: Path, group: str, topics: list[str], bootstrap: str) -> None:
        env = {
            **os.environ,
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.runtime.keyed_worker",
                str(journal),
                group,
                *topics,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    async def terminate(self, within: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        deadline = asyncio.get_running_loop().time() + within
        while self.process.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                self.process.kill()
                raise AssertionError("worker did not exit after SIGTERM")
            await asyncio.sleep(0.05)
        return self.process.returncode

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stderr_tail(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-3000:]


def first_time_order_violations(entries: list[Entry]) -> list[str]:
    """Per key, the first handling of each record must follow offset order (per partition).

    Redelivery after a crash or handover replays from the committed offset, so duplicates may
    go back in offset; but a record handled for the first time must never overtake an earlier
    record of its key that was not handled yet.
    """
    seen: set[tuple[str, int, int]] = set()
    highest: dict[tuple[str, str, int], int] = {}
    violations = []
    for e in entries:
        if e.kind != "done":
            continue
        ident = (e.topic, e.partition, e.offset)
        if ident in seen:
            continue
        seen.add(ident)
        key = (e.key, e.topic, e.partition)
        if highest.get(key, -1) > e.offset:
            violations.append(f"{e.key}: {e.offset} first handled after {highest[key]}")
        highest[key] = max(highest.get(key, -1), e.offset)
    return violations


def offsets_by_key(produced: list[Produced]) -> dict[str, list[int]]:
    result: dict[str, list[int]] = defaultdict(list)
    for p in produced:
        result[p.key].append(p.offset)
    return result
