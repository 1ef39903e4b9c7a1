"""What a measurement window reads before and after: CPU from /proc, records per topic (end
offsets), MongoDB commands and garbage-collector pauses per process (the probe's files), the
Mongo stand-in's lock time per collection (its `standInStats` command,
deploy/local/MongoLauncher.java), consumer-group lag."""

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure

from contracts.topics import TopicCatalogue

_TICKS = os.sysconf("SC_CLK_TCK")
# Commands that are not the workload: connection set-up, readiness probes, session ends.
IGNORED_COMMANDS = frozenset({"ping", "hello", "isMaster", "ismaster", "endSessions", "buildInfo"})


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def run_delay_seconds(pid: int) -> float:
    """Seconds the threads of `pid` spent runnable but waiting for a core, so far (the
    second field of each thread's /proc schedstat; 0 when it is gone). A thread that ended
    takes its share with it: the services' threads live as long as they do."""
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0.0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def listening_pid(port: int) -> int | None:
    """The process that listens on TCP `port` (the shared Kafka and Mongo servers)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def partitions_of(catalogue: TopicCatalogue) -> list[TopicPartition]:
    return [TopicPartition(s.name, p) for s in catalogue.specs() for p in range(s.partitions)]


def read_mongo_counts(probe_dir: Path) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for path in probe_dir.glob("*.json"):
        try:
            counts[path.stem] = Counter(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return counts


Pause = tuple[float, int, float]
"""A garbage collection the probe timed: epoch seconds at its end, generation, milliseconds."""


def read_pauses(probe_dir: Path) -> dict[str, list[Pause]]:
    """Per process, the collections the probe noted (full ones, and any of 2 ms or more)."""
    pauses: dict[str, list[Pause]] = {}
    for path in probe_dir.glob("*.pauses"):
        try:
            pauses[path.stem] = [
                (float(t), int(g), float(ms)) for t, g, ms in json.loads(path.read_text())
            ]
        except (OSError, ValueError):
            continue
    return pauses


COMMITS: Final = "(commits) commit"
"""In `read_lock_time`'s answer: the part of the lock's time spent committing to the data file
(the launcher commits after every command, under the lock)."""


async def read_lock_time(
    client: AsyncMongoClient[dict[str, Any]], database: str
) -> dict[str, float]:
    """Milliseconds the Mongo stand-in held its one command lock for `database`'s commands, per
    "<collection> <command>", and spent in their commits (`COMMITS`), since it started; empty
    on a server without the command (a real MongoDB runs commands concurrently: no such lock)."""
    try:
        answer = await client.admin.command("standInStats")
    except OperationFailure:
        return {}
    prefix = f"{database}."
    mine = {
        key.removeprefix(prefix): totals
        for key, totals in answer.get("namespaces", {}).items()
        if key.startswith(prefix)
    }
    held = {key: float(totals["busy_ms"]) for key, totals in mine.items()}
    held[COMMITS] = sum(float(totals.get("commit_ms", 0.0)) for totals in mine.values())
    return held


@dataclass(frozen=True)
class Snapshot:
    at: float
    cpu: dict[str, float]
    waited: dict[str, float]  # seconds runnable without a core, per process (run_delay_seconds)
    mongo: dict[str, Counter[str]]
    offsets: dict[str, int]
    lock_ms: dict[str, float]
    pauses: dict[str, list[Pause]]


class Observer:
    def __init__(
        self,
        bootstrap: str,
        partitions: Sequence[TopicPartition],
        groups: Sequence[str],
        probe_dir: Path,
        store: tuple[AsyncMongoClient[dict[str, Any]], str] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._store = store
        self.groups = list(groups)
        self._probe_dir = probe_dir
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._partitions = list(partitions)

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def end_offsets(self) -> dict[TopicPartition, int]:
        result: dict[TopicPartition, int] = await self._consumer.end_offsets(self._partitions)
        return result

    async def snapshot(self, at: float, pids: Mapping[str, int | None]) -> Snapshot:
        ends = await self.end_offsets()
        per_topic: Counter[str] = Counter()
        for tp, offset in ends.items():
            per_topic[tp.topic] += offset
        return Snapshot(
            at=at,
            cpu={name: cpu_seconds(pid) for name, pid in pids.items() if pid is not None},
            waited={name: run_delay_seconds(pid) for name, pid in pids.items() if pid is not None},
            mongo=read_mongo_counts(self._probe_dir),
            offsets=dict(per_topic),
            lock_ms={} if self._store is None else await read_lock_time(*self._store),
            pauses=read_pauses(self._probe_dir),
        )

    async def lag(self) -> dict[str, int]:
        """Per group: records on its topics not yet committed by it."""
        ends = await self.end_offsets()
        result: dict[str, int] = {}
        for group in self.groups:
            committed = await self._admin.list_consumer_group_offsets(group)
            total = 0
            for tp, meta in committed.items():
                if tp in ends and meta.offset >= 0:
                    total += max(0, ends[tp] - meta.offset)
            mine = {tp.topic for tp in committed}
            # Partitions the group has not committed yet count from their start.
            total += sum(
                end for tp, end in ends.items() if tp.topic in mine and tp not in committed
            )
            result[group] = total
        return result


def lag_bounded(samples: Sequence[Mapping[str, int]], slack: Mapping[str, float]) -> bool:
    """Every group's lag in the last third of the window stays within 1.2x of its peak in the
    first two thirds, plus `slack` records (a commit interval's worth): a group that falls
    behind grows its lag linearly and fails."""
    if len(samples) < 3:
        return True
    cut = (2 * len(samples)) // 3
    for group in samples[0]:
        early = max(s[group] for s in samples[:cut])
        late = max(s[group] for s in samples[cut:])
        if late > early * 1.2 + slack.get(group, 0.0):
            return False
    return True
