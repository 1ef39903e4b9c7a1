"""Where a turn's time goes, hop by hop: the Kafka CreateTime of each stage's record, read back
from a variant's topics after the run.

A turn's stages are its user-message command, `turn.started`, `llm.requested`, `llm.completed`,
`turn.complete` (the turn command) and `turn.completed`. They are matched per session by order:
in this workload every turn makes exactly one LLM call, in the pipeline and in the relay alike
(the relay writes the same types under the same keys), so the n-th record of each stage of a
session belongs to its n-th turn. A session whose stages do not line up (a failed turn) is left
out and counted. Each hop is the difference of two CreateTimes, i.e. what the consumer of the
first record took to read, handle and publish the second — its queueing included.
"""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.topics import TopicCatalogue, TopicName

STAGES: Final = (
    ("command", TopicName.COMMANDS, b"session.submit_user_message.v1"),
    ("turn started", TopicName.SESSION_EVENTS, b"turn.started.v1"),
    ("LLM requested", TopicName.LLM_REQUESTS, b"llm.requested.v1"),
    ("LLM completed", TopicName.LLM_RESULTS, b"llm.completed.v1"),
    ("turn command", TopicName.TURNS, b"turn.complete.v1"),
    ("turn completed", TopicName.SESSION_EVENTS, b"turn.completed.v1"),
)
HOPS: Final = tuple(f"{a[0]} → {b[0]}" for a, b in pairwise(STAGES))


@dataclass
class HopTimes:
    """Per hop, the milliseconds each matched turn spent there; `unmatched` sessions left out."""

    hops: dict[str, list[float]] = field(default_factory=lambda: {hop: [] for hop in HOPS})
    total: list[float] = field(default_factory=list)
    unmatched: int = 0


async def read_hops(
    bootstrap: str, catalogue: TopicCatalogue, phases: Mapping[str, Sequence[str]]
) -> dict[str, HopTimes]:
    """`phases`: a label → the session-id prefixes of its phases. Reads the stages' topics from
    the beginning to their current end."""
    topics = {catalogue.name(topic) for _, topic, _ in STAGES}
    stage_of = {(catalogue.name(topic), kind): i for i, (_, topic, kind) in enumerate(STAGES)}
    # label → session → stage → CreateTimes in offset order (one partition per session)
    times: dict[str, dict[str, list[list[int]]]] = {label: {} for label in phases}
    prefixes = [(prefix, label) for label, ps in phases.items() for prefix in ps]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(spec.name, p)
            for spec in catalogue.specs()
            if spec.name in topics
            for p in range(spec.partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    kind = next((v for k, v in record.headers if k == "ce_type"), None)
                    stage = stage_of.get((tp.topic, kind or b""))
                    session = (record.key or b"").decode()
                    if stage is None:
                        continue
                    label = next((lb for p, lb in prefixes if session.startswith(p)), None)
                    if label is None:
                        continue
                    stages = times[label].setdefault(session, [[] for _ in STAGES])
                    stages[stage].append(record.timestamp)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return {label: _hop_times(sessions) for label, sessions in times.items()}


def _hop_times(sessions: Mapping[str, list[list[int]]]) -> HopTimes:
    result = HopTimes()
    for stages in sessions.values():
        turns = len(stages[0])
        if any(len(stage) != turns for stage in stages):
            result.unmatched += 1
            continue
        for n in range(turns):
            for hop, (a, b) in zip(HOPS, pairwise(stages), strict=True):
                result.hops[hop].append(float(b[n] - a[n]))
            result.total.append(float(stages[-1][n] - stages[0][n]))
    return result


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def hop_row(times: HopTimes) -> str:
    """`p50 / p99` per hop and in total, as table cells."""
    cells = [
        f"{statistics.median(v):,.0f} / {percentile(v, 0.99):,.0f}" if v else "—"
        for v in (*times.hops.values(), times.total)
    ]
    return " | ".join(cells)
