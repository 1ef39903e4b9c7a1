"""The runtime as separate processes against the real broker: kill -9, SIGTERM, rebalance.

Workers journal every handled record and every commit (see keyed_worker.py); the assertions
read the journal and the group's committed offsets.
"""

import asyncio
import random
from collections import defaultdict
from pathlib import Path

import pytest

from tests.conftest import TopicFactory
from tests.integration.runtime.harness import (
    Journal,
    Produced,
    Worker,
    committed_offsets,
    eventually,
    first_time_order_violations,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def keys(count: int, distinct: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"session-{rng.randrange(distinct)}" for _ in range(count)]


def all_ids(produced: list[Produced]) -> set[tuple[str, int, int]]:
    return {(p.topic, p.partition, p.offset) for p in produced}


async def test_kill_9_mid_stream_loses_nothing_and_never_commits_past_unfinished_work(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str, tmp_path: Path
) -> None:
    topic = await topic_factory("kill9", 6)
    group = f"kill9-{unique_suffix}"
    journal = Journal(tmp_path / "journal")
    produced = await produce(kafka_bootstrap_servers, topic, keys(3000, 300, 1))
    first = Worker(journal.path, group, [topic], kafka_bootstrap_servers)
    try:
        await eventually(lambda: len(journal.of("done")) >= 600, 40, "some records handled")
        await eventually(lambda: bool(journal.of("commit")), 10, "a first commit")
        first.kill9()
    finally:
        first.stop_quietly()

    # No commit past an unfinished record: everything below each committed offset was done.
    committed = await committed_offsets(kafka_bootstrap_servers, group)
    assert committed, "the killed worker had committed nothing"
    done = journal.done_set()
    handled_by_first = len(journal.of("done"))
    assert handled_by_first < len(produced), "the worker finished before the kill"
    for (t, partition), offset in committed.items():
        missing = [o for o in range(offset) if (t, partition, o) not in done]
        assert not missing, f"{t}[{partition}] committed {offset} but {missing[:5]} not done"

    second = Worker(journal.path, group, [topic], kafka_bootstrap_servers)
    try:
        await eventually(
            lambda: all_ids(produced) <= journal.done_set(), 40, "every record handled"
        )
        # Re-delivered: only records at or above the committed offsets.
        redone = [e for e in journal.of("done") if e.pid == second.pid]
        assert all(e.offset >= committed.get((e.topic, e.partition), 0) for e in redone)
        assert not first_time_order_violations(journal.of("done"))
    finally:
        await second.terminate()


async def test_sigterm_drains_commits_and_a_restart_redelivers_nothing_finished(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str, tmp_path: Path
) -> None:
    topic = await topic_factory("sigterm", 6)
    group = f"sigterm-{unique_suffix}"
    journal = Journal(tmp_path / "journal")
    produced = await produce(kafka_bootstrap_servers, topic, keys(3000, 500, 2))
    worker = Worker(journal.path, group, [topic], kafka_bootstrap_servers)
    try:
        await eventually(lambda: len(journal.of("done")) >= 500, 40, "some records handled")
        code = await worker.terminate()
    finally:
        worker.stop_quietly()
    assert code == 0, worker.stderr_tail()
    assert journal.of("stopped"), "the worker did not run its shutdown to the end"
    done_before = journal.done_set()
    assert len(done_before) < len(produced)

    # Everything finished was committed, and nothing unfinished: per partition, the committed
    # offset is exactly where the finished records end.
    committed = await committed_offsets(kafka_bootstrap_servers, group)
    for t, partition in {(p.topic, p.partition) for p in produced}:
        offset = committed.get((t, partition), 0)
        finished = {o for (tt, pp, o) in done_before if (tt, pp) == (t, partition)}
        assert finished == set(range(offset)), f"{t}[{partition}] committed {offset}"

    restarted = Worker(journal.path, group, [topic], kafka_bootstrap_servers)
    try:
        await eventually(lambda: all_ids(produced) <= journal.done_set(), 40, "the rest")
        redone = [
            (e.topic, e.partition, e.offset)
            for e in journal.of("done")
            if e.pid == restarted.pid and (e.topic, e.partition, e.offset) in done_before
        ]
        assert not redone, f"finished before SIGTERM, handled again: {redone[:5]}"
    finally:
        await restarted.terminate()


async def test_rebalance_while_producing_keeps_order_and_only_repeats_uncommitted_records(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str, tmp_path: Path
) -> None:
    commands = await topic_factory("rb-commands", 6)
    turns = await topic_factory("rb-turns", 6)  # co-partitioned: range assignment
    group = f"rebalance-{unique_suffix}"
    journal = Journal(tmp_path / "journal")
    produced: list[Produced] = []

    async def produce_for(seconds: float, seed: int) -> None:
        rng = random.Random(seed)
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            batch = keys(150, 200, rng.randrange(10**6))
            produced.extend(await produce(kafka_bootstrap_servers, commands, batch[:100]))
            produced.extend(await produce(kafka_bootstrap_servers, turns, batch[100:]))
            await asyncio.sleep(0.1)

    a = Worker(journal.path, group, [commands, turns], kafka_bootstrap_servers)
    b: Worker | None = None
    try:
        await eventually(lambda: a.pid in journal.ready_pids(), 30, "worker A ready")
        producing = asyncio.create_task(produce_for(14, 3))
        await asyncio.sleep(3)
        b = Worker(journal.path, group, [commands, turns], kafka_bootstrap_servers)
        await eventually(
            lambda: any(e.pid == b.pid for e in journal.of("done")), 30, "B takes partitions"
        )
        await asyncio.sleep(2)
        assert await b.terminate() == 0, b.stderr_tail()  # hands its partitions back to A
        await producing
        await eventually(lambda: all_ids(produced) <= journal.done_set(), 40, "all handled")
    finally:
        a.stop_quietly()
        if b is not None:
            b.stop_quietly()

    entries = journal.read().entries
    assert not first_time_order_violations(entries)
    # Duplicates only for records not yet committed when they were handled again.
    committed_at: dict[tuple[str, int], int] = defaultdict(int)
    seen: set[tuple[str, int, int]] = set()
    duplicates = 0
    for e in entries:
        if e.kind == "commit":
            part = (e.topic, e.partition)
            committed_at[part] = max(committed_at[part], e.offset)
        elif e.kind == "done":
            ident = (e.topic, e.partition, e.offset)
            if ident in seen:
                duplicates += 1
                assert e.offset >= committed_at[(e.topic, e.partition)], (
                    f"{ident} handled again after offset {committed_at[(e.topic, e.partition)]}"
                    " was committed"
                )
            seen.add(ident)
    assert {e.pid for e in entries if e.kind == "done"} == {a.pid, b.pid}
