"""Turn latency under kill -9 chaos: an open-loop load, a killer, and the figures.

Each session gets one user message every `interval_s` whether or not its last turn finished
(open loop: a stalled partition keeps receiving work, so a stall shows in the latency instead
of slowing the load down). A turn's latency is its `TurnCompleted.occurred_at` minus its
`UserMessageAccepted.occurred_at`, both stamped by session-commands, so queueing behind a
stalled turn counts.
"""

import asyncio
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from contracts.base import derive_id
from contracts.codec import encode
from contracts.commands import Command, CreateSession, SubmitUserMessage
from contracts.session_events import (
    CommandRejected,
    TurnCompleted,
    TurnFailed,
    UserMessageAccepted,
)
from contracts.topics import TopicName
from services.cli.stack import ServiceStack
from tests.e2e.conftest import Pipeline
from tests.e2e.conversations import Conversation, EventCollector


@dataclass(frozen=True)
class ChaosLoad:
    sessions: int = 8
    interval_s: float = 2.0
    duration_s: float = 60.0
    kill_every_s: float | None = 5.0  # None: no kills, the same load alone


@dataclass
class LatencyReport:
    label: str
    latencies_s: list[float] = field(default_factory=list)
    # (seconds since the load started, latency) of every completed turn, and when each kill was
    slowest: list[tuple[float, float]] = field(default_factory=list)
    kill_times: list[tuple[float, str]] = field(default_factory=list)
    restarts_s: list[float] = field(default_factory=list)  # kill -9 → ready again
    rebalances: int = 0  # "rebalanced" lines the instances wrote during the run
    outcomes: Counter[str] = field(default_factory=Counter)  # failed and refused, by reason
    kills: int = 0
    submitted: int = 0
    failed: int = 0
    rejected: int = 0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (no interpolation: p99 is a latency that happened)."""
        ordered = sorted(self.latencies_s)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan

    def row(self) -> str:
        return (
            f"| {self.label} | {self.kills} | {self.submitted} | {len(self.latencies_s)} "
            f"| {self.failed + self.rejected} | {self.percentile(50):.2f} "
            f"| {self.percentile(95):.2f} | {self.percentile(99):.2f} "
            f"| {max(self.latencies_s, default=math.nan):.2f} "
            f"| {max(self.restarts_s, default=math.nan):.1f} | {self.rebalances} |"
        )

    def slowest_turns(self) -> str:
        """Where the tail comes from: the slowest turns next to the kills just before them."""
        lines = [
            f"{self.label}: slowest turns (accepted at +s: latency s; kills in the 10 s before)"
        ]
        for accepted_at, latency in self.slowest:
            near = [
                f"{name} +{at:.0f}" for at, name in self.kill_times if 0 <= accepted_at - at <= 10
            ]
            lines.append(f"  +{accepted_at:.0f}: {latency:.1f} ({', '.join(near) or '-'})")
        if self.outcomes:
            lines.append(f"  failed/refused: {dict(self.outcomes)}")
        return "\n".join(lines)


TABLE_HEADER = (
    "| run | kills | turns | completed | failed/refused | p50 s | p95 s | p99 s | max s | slowest restart s | rebalances |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _create(session_id: str, tenant_id: str) -> CreateSession:
    return CreateSession(
        id=derive_id("cmd", session_id, "create"),
        session_id=session_id,
        tenant_id=tenant_id,
        title="recovery",
    )


def _message(session_id: str, tenant_id: str, turn: int) -> SubmitUserMessage:
    return SubmitUserMessage(
        id=derive_id("cmd", session_id, turn),
        message_id=derive_id("msg", session_id, turn),
        session_id=session_id,
        tenant_id=tenant_id,
        content=f"[{turn}] Write code that retries an HTTP call with backoff.",
    )


async def _send(producer: AIOKafkaProducer, topic: str, commands: list[Command]) -> None:
    futures = []
    for command in commands:
        record = encode(command, source="chaos", correlation_id=command.id)
        futures.append(
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        )
    await asyncio.gather(*futures)


def rebalanced_lines(stack: ServiceStack) -> int:
    """The "rebalanced" lines the instances wrote (service_runtime.py: one per member per
    rebalance of its group after its start; a static member's restart without one writes none,
    its first assignment is its ready line)."""
    written = 0
    for name in stack.services:
        path = stack.log_path(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        written += text.count('"rebalanced": true')
    return written


def service_of(instance: str) -> str:
    return instance.rsplit("-", 1)[0]  # session-commands-2 → session-commands


def pick_victim(names: list[str], restarting: set[str], rng: random.Random) -> str | None:
    """A random running instance whose service has no instance restarting: one failure at a
    time per service, which two instances per service are there to absorb. (Killing the second
    instance while the first is still starting stops the whole service for the restart time,
    whatever the membership protocol.) None when every service has one restarting."""
    down = {service_of(name) for name in restarting}
    candidates = [name for name in names if service_of(name) not in down]
    return rng.choice(candidates) if candidates else None


async def _kill_in_turn(
    stack: ServiceStack, every_s: float, stop: asyncio.Event, report: "LatencyReport"
) -> None:
    """kill -9 one instance every `every_s` and start it again at once (as a container
    runtime restarts a crashed container under the same pod name). Seeded: "before" and
    "after" draw their victims from the same random sequence."""
    names = list(stack.services)
    rng = random.Random(16)
    restarting: set[str] = set()
    restarts: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            name = pick_victim(names, restarting, rng)
            if name is None:
                continue
            stack.kill(name)
            stack.start(name)
            report.kill_times.append((time.time(), name))
            restarting.add(name)
            restart = asyncio.create_task(_time_restart(stack, name, report, restarting))
            restarts.add(restart)
            restart.add_done_callback(restarts.discard)
    await asyncio.gather(*restarts)


async def _time_restart(
    stack: ServiceStack, name: str, report: "LatencyReport", restarting: set[str]
) -> None:
    started = time.monotonic()
    try:
        await stack.wait_ready(timeout_s=120.0, names=[name])
    finally:
        restarting.discard(name)
    report.restarts_s.append(time.monotonic() - started)


async def measure_turn_latency(
    pipeline: Pipeline, label: str, run_id: str, load: ChaosLoad
) -> LatencyReport:
    settings = pipeline.settings
    tenant = settings.tenant_id
    runs = [Conversation(f"{run_id}-s{i:03d}", []) for i in range(load.sessions)]
    topic = pipeline.catalogue.name(TopicName.COMMANDS)
    report = LatencyReport(label)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        async with EventCollector(
            settings.kafka_bootstrap_servers, pipeline.catalogue, runs
        ) as events:
            await _send(producer, topic, [_create(r.session_id, tenant) for r in runs])
            stop_killing = asyncio.Event()
            killer = asyncio.create_task(
                _kill_in_turn(pipeline.stack, load.kill_every_s, stop_killing, report)
                if load.kill_every_s is not None
                else stop_killing.wait()
            )
            rebalanced_before = rebalanced_lines(pipeline.stack)
            load_started = time.time()
            started = time.monotonic()
            turn = 0
            while time.monotonic() - started < load.duration_s:
                tick = time.monotonic()
                batch = [_message(r.session_id, tenant, turn) for r in runs]
                for run, command in zip(runs, batch, strict=True):
                    run.user_contents.append(command.content)
                await _send(producer, topic, list(batch))
                turn += 1
                while time.monotonic() - tick < load.interval_s:
                    await events.poll(timeout_ms=200)
            stop_killing.set()
            await killer
            report.kills = len(report.kill_times)
            report.rebalances = rebalanced_lines(pipeline.stack) - rebalanced_before
            report.submitted = turn * load.sessions
            await _until_settled(events, runs, turn, timeout_s=180.0)
    finally:
        await producer.stop()
    for run in runs:
        accepted: dict[str, UserMessageAccepted] = {}
        completed: dict[str, TurnCompleted] = {}
        seen: set[str] = set()
        for event in run.events:
            if event.id in seen:  # a redelivery republishes the same event
                continue
            seen.add(event.id)
            if isinstance(event, UserMessageAccepted):
                turn_id = derive_id("turn", run.session_id, event.message_id)
                accepted.setdefault(turn_id, event)
            elif isinstance(event, TurnCompleted):
                completed.setdefault(event.turn_id, event)
            elif isinstance(event, TurnFailed):
                report.failed += 1
                report.outcomes[f"TurnFailed {event.error_class}"] += 1
            elif isinstance(event, CommandRejected):
                report.rejected += 1
                report.outcomes[f"CommandRejected {event.reason}"] += 1
        for turn_id, done in completed.items():
            if turn_id in accepted:
                at = accepted[turn_id].occurred_at
                latency = (done.occurred_at - at).total_seconds()
                report.latencies_s.append(latency)
                report.slowest.append((at.timestamp() - load_started, latency))
    report.slowest = sorted(report.slowest, key=lambda turn: -turn[1])[:5]
    report.kill_times = [(at - load_started, name) for at, name in report.kill_times]
    return report


async def _until_settled(
    events: EventCollector, runs: list[Conversation], turns: int, timeout_s: float
) -> None:
    """Until every turn completed, failed or was refused (a lost turn fails the run)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ended = len(
            {
                event.id
                for run in runs
                for event in run.events
                if isinstance(event, TurnCompleted | TurnFailed | CommandRejected)
            }
        )
        if ended >= turns * len(runs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"only {ended}/{turns * len(runs)} turns ended in {timeout_s:.0f}s"
            )
        await events.poll()
