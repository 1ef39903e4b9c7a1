"""Per-turn cost of the pipeline, side by side with a raw-Kafka relay of the same hops (issue 15).

    .venv/bin/python benchmarks/pipeline.py [--quick] [--reps N] [--bootstrap 127.0.0.1:9092]
        [--mongodb-uri 'mongodb://127.0.0.1:27017/?directConnection=true']
        [--model-latency S [--sessions N]]

Three variants, each on topics (12 partitions) and a database of this run alone, deleted after:
- relay: raw aiokafka, one process per role (benchmarks/perf/relay.py): the same topics, hops,
  keys, headers and record sizes as the pipeline, no work in between;
- relay+writes: the same, plus one awaited MongoDB upsert per session-commands input;
- pipeline: the four services as processes (services/cli/stack.py), offline provider; each
  session is created with the `ask` agent and asks plain questions: one LLM call per turn.

Printed, with repetitions interleaved across the variants (min / median / max):
- closed-loop saturation turns/s (100 sessions, one turn in flight each; `--sessions` with
  `--model-latency`);
- sustainable turns/s: the highest of a few open-loop rates (fractions of the saturation
  median) at which every consumer group's lag stays bounded over the window;
- open-loop latency p50/p95/p99 (message sent → `turn.completed` written) at fixed rates;
- CPU ms per turn per process (/proc; Kafka and Mongo are shared with whatever else runs on
  the machine, so theirs is only indicative), records per turn per topic, MongoDB commands
  per turn per process (a pymongo command listener loaded into each process, see
  benchmarks/perf/probe/sitecustomize.py).
The machine's load average is printed at the start and the end: compare ratios, not absolutes.

`--model-latency S` measures something else: the pipeline alone with a model that takes about
S seconds per call (the offline provider, paced), `--sessions` (500) with one turn in flight
each, closed loop, against what one turn in flight per partition would allow
(benchmarks/perf/slow_model.py).
"""

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/pipeline.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

from benchmarks.perf.driver import Driver, Phase  # noqa: E402
from benchmarks.perf.hops import HOPS, HopTimes, hop_row, read_hops  # noqa: E402
from benchmarks.perf.observe import (  # noqa: E402
    COMMITS,
    IGNORED_COMMANDS,
    Observer,
    Pause,
    Snapshot,
    lag_bounded,
    listening_pid,
    partitions_of,
)
from benchmarks.perf.profile import measure  # noqa: E402
from benchmarks.perf.relay import ROLES  # noqa: E402
from benchmarks.perf.slow_model import DELAY_ENV, chunk_delay_s, report_slow_model  # noqa: E402
from contracts.topics import TopicCatalogue, TopicName  # noqa: E402
from services.admin.topics import delete_topics, ensure_topics  # noqa: E402
from services.cli.stack import SERVICES, ServiceStack  # noqa: E402

PROBE_DIR = ROOT / "benchmarks" / "perf" / "probe"
GROUP_ENV = {
    "session-commands": "AGENT_RUNTIME_SESSION_COMMANDS_CONSUMER_GROUP",
    "agent-orchestration": "AGENT_RUNTIME_ORCHESTRATION_CONSUMER_GROUP",
    "llm-invocation": "AGENT_RUNTIME_LLM_CONSUMER_GROUP",
    "audit": "AGENT_RUNTIME_AUDIT_CONSUMER_GROUP",
}


@dataclass(frozen=True)
class Plan:
    reps: int
    concurrency: int
    saturation_s: float
    open_s: float
    sustainable_fractions: tuple[float, ...]
    latency_fractions: tuple[float, ...]  # of the pipeline's sustainable rate
    drain_s: float


QUICK = Plan(2, 100, 8, 10, (0.8, 0.6, 0.45, 0.33, 0.25, 0.15), (0.5,), 30)
FULL = Plan(3, 200, 20, 60, (0.9, 0.75, 0.6, 0.45, 0.35, 0.25, 0.15), (0.5, 1.0), 90)


@dataclass
class Measured:
    turns_per_s: float
    cpu_ms: dict[str, float]  # per turn, per process
    waited_ms: dict[str, float]  # per turn, per process: runnable, waiting for a core
    mongo: dict[str, Counter[str]]  # per process, commands in the window
    records: dict[str, float]  # per turn, per topic
    turns: int
    latencies: list[float] = field(default_factory=list)
    bounded: bool = True
    skipped: int = 0
    failed: int = 0
    session_prefix: str = ""  # the phase's sessions, for the per-hop breakdown
    lock_ms: dict[str, float] = field(default_factory=dict)  # per turn, "<collection> <command>"
    lock_share: float = 0.0  # of the time between the snapshots, the stand-in's lock was held
    commit_ms: float = 0.0  # per turn, the part of lock_ms spent committing to the data file
    pauses: dict[str, list[Pause]] = field(default_factory=dict)  # per process, in the window


@dataclass
class Variant:
    name: str
    prefix: str
    driver: Driver
    observer: Observer
    pids: Callable[[], dict[str, int | None]]
    results: dict[str, list[Measured]] = field(default_factory=dict)
    sustainable: float | None = None
    phases: int = 0

    def new_phase(self, sessions: int) -> Phase:
        self.phases += 1
        stamp = uuid.uuid4().hex[:6]
        return Phase([f"{self.prefix}p{self.phases}-{stamp}-{i}" for i in range(sessions)])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def measured(
    before: Snapshot, after: Snapshot, phase: Phase, window: tuple[float, float]
) -> Measured:
    """Rates and latencies from the window; costs per turn from everything between the two
    snapshots, which enclose all the work of the phase's turns (taken on idle groups)."""
    in_window = [
        latency for received, latency in phase.completed if window[0] <= received <= window[1]
    ]
    per = max(len(phase.completed), 1)
    mongo = {name: after.mongo[name] - before.mongo.get(name, Counter()) for name in after.mongo}
    lock = {k: after.lock_ms[k] - before.lock_ms.get(k, 0.0) for k in after.lock_ms}
    commits = lock.pop(COMMITS, 0.0)
    return Measured(
        turns_per_s=len(in_window) / (window[1] - window[0]),
        cpu_ms={n: (after.cpu[n] - before.cpu.get(n, 0.0)) * 1000 / per for n in after.cpu},
        waited_ms={
            n: (after.waited[n] - before.waited.get(n, 0.0)) * 1000 / per for n in after.waited
        },
        mongo=mongo,
        records={t: (after.offsets[t] - before.offsets.get(t, 0)) / per for t in after.offsets},
        turns=len(phase.completed),
        latencies=in_window,
        session_prefix=phase.sessions[0].rsplit("-", 1)[0] + "-",
        failed=phase.failed,
        lock_ms={k: ms / per for k, ms in lock.items() if ms > 0},
        lock_share=sum(lock.values()) / 1000 / max(after.at - before.at, 1e-9),
        commit_ms=commits / per,
        pauses=pauses_within(after.pauses, window),
    )


def pauses_within(
    pauses: dict[str, list[Pause]], window: tuple[float, float]
) -> dict[str, list[Pause]]:
    return {
        name: [p for p in noted if window[0] <= p[0] <= window[1]] for name, noted in pauses.items()
    }


async def drain(variant: Variant, timeout_s: float) -> None:
    """Until every group caught up, so the next phase starts on an idle pipeline."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = await variant.observer.lag()
        if all(v <= 0 for v in lag.values()):
            return
        if time.monotonic() >= deadline:
            print(f"  ! {variant.name}: groups still lagging after {timeout_s:.0f}s: {lag}")
            return
        await asyncio.sleep(0.5)


async def saturation(variant: Variant, plan: Plan) -> Measured:
    phase = variant.new_phase(plan.concurrency)
    await variant.driver.create(phase)
    await drain(variant, plan.drain_s)
    before = await variant.observer.snapshot(time.time(), variant.pids())
    opened: list[float] = []

    async def window_opens() -> None:
        opened.append(time.time())

    ended = await variant.driver.closed_loop(phase, plan.saturation_s, window_opens)
    await variant.driver.settle(phase, plan.drain_s)
    await drain(variant, plan.drain_s)
    after = await variant.observer.snapshot(time.time(), variant.pids())
    return measured(before, after, phase, (opened[0], ended))


async def open_loop(variant: Variant, rate: float, seconds: float, plan: Plan) -> Measured:
    phase = variant.new_phase(int(min(max(rate * 4, 50), 3_000)))
    await variant.driver.create(phase)
    await drain(variant, plan.drain_s)
    samples: list[dict[str, int]] = []

    async def sample() -> None:
        samples.append(await variant.observer.lag())

    before = await variant.observer.snapshot(time.time(), variant.pids())
    skipped = await variant.driver.open_loop(phase, rate, seconds, sample)
    ended = time.time()
    await variant.driver.settle(phase, 10.0)
    await drain(variant, plan.drain_s)
    after = await variant.observer.snapshot(time.time(), variant.pids())
    result = measured(before, after, phase, (before.at, after.at))
    result.turns_per_s = result.turns / (ended - before.at)
    result.pauses = pauses_within(after.pauses, (before.at, ended))
    # A commit interval (1 s) of each group's inputs, plus a second of noise.
    per_turn = sum(result.records.values())
    result.bounded = skipped == 0 and lag_bounded(
        samples, dict.fromkeys(variant.observer.groups, 2 * rate * per_turn)
    )
    result.skipped = skipped
    return result


def stats(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report_hops(hops: dict[str, dict[str, HopTimes]]) -> None:
    print("\n## Per hop, ms (p50 / p99), from the CreateTime of each stage's record")
    print(f"| variant | phase | {' | '.join(HOPS)} | total | unmatched sessions |")
    print(f"|---|---|{'---|' * (len(HOPS) + 2)}")
    for name, by_phase in hops.items():
        for label, times in by_phase.items():
            print(f"| {name} | {label} | {hop_row(times)} | {times.unmatched} |")


def report(variants: list[Variant], plan: Plan, rates: list[float]) -> None:
    base = statistics.median(r.turns_per_s for r in variants[0].results["saturation"])
    print("\n## Saturation (closed loop) and sustainable rate, turns/s")
    # The throughput target is stated against the relay with the same durable writes.
    writes_sus = next((v.sustainable for v in variants if v.name == "relay+writes"), None) or 1.0
    print(
        "| variant | saturation min / median / max | vs relay | sustainable | vs relay"
        " | vs relay+writes |"
    )
    print("|---|---|---|---|---|---|")
    for v in variants:
        sat = [r.turns_per_s for r in v.results["saturation"]]
        sus = v.sustainable or 0.0
        base_sus = variants[0].sustainable or 1.0
        print(
            f"| {v.name} | {stats(sat)} | {statistics.median(sat) / base:.3f} "
            f"| {sus:,.0f} | {sus / base_sus:.3f} | {sus / writes_sus:.3f} |"
        )
    report_latency(variants, rates)
    report_costs(variants)
    report_core_waits(variants, ["saturation", "sustainable", *(f"open@{r:.0f}" for r in rates)])


def report_latency(variants: list[Variant], rates: list[float]) -> None:
    print("\n## Open-loop latency, ms (median over repetitions; p99 min-max)")
    print("| variant | rate | p50 | p95 | p99 | p99 range | lag bounded |")
    print("|---|---|---|---|---|---|---|")
    for rate in rates:
        for v in variants:
            runs = v.results.get(f"open@{rate:.0f}", [])
            if not runs:
                continue
            p = [[pct(r.latencies, q) for r in runs] for q in (0.5, 0.95, 0.99)]
            bounded = "yes" if all(r.bounded for r in runs) else "no"
            print(
                f"| {v.name} | {rate:,.0f}/s | {statistics.median(p[0]):.0f} "
                f"| {statistics.median(p[1]):.0f} | {statistics.median(p[2]):.0f} "
                f"| {min(p[2]):.0f}-{max(p[2]):.0f} | {bounded} |"
            )
    report_pauses(variants, rates)


def report_pauses(variants: list[Variant], rates: list[float]) -> None:
    """A collection stops the process's event loop: every record in flight there waits it out
    (services/runtime/startup_heap.py)."""
    print(
        "\n## Garbage-collector pauses in the open-loop windows, per process: full collections"
        " (count, longest ms) and every collection of 10 ms or more (count, longest ms)"
    )
    for rate in rates:
        for v in variants:
            for rep, run in enumerate(v.results.get(f"open@{rate:.0f}", []), 1):
                cells = []
                for name, noted in sorted(run.pauses.items()):
                    full = [ms for _, generation, ms in noted if generation == 2]
                    long = [ms for _, _, ms in noted if ms >= 10]
                    cells.append(
                        f"{name} {len(full)} full (max {max(full, default=0):.0f}),"
                        f" {len(long)} ≥10 ms (max {max(long, default=0):.0f})"
                    )
                if cells:
                    print(f"- {v.name} @ {rate:,.0f}/s, rep {rep}: {'; '.join(cells)}")


def report_core_waits(variants: list[Variant], labels: Sequence[str]) -> None:
    """Time a process was runnable but had no core (/proc schedstat): what the machine's
    cores, not the work itself, added to its records' time."""
    print(
        "\n## Waiting for a core, ms per turn per process (median; threads runnable without a"
        " core, from /proc schedstat)"
    )
    for label in labels:
        for v in variants:
            runs = v.results.get(label, [])
            if not runs:
                continue
            per = medians_by_name(runs, lambda r: r.waited_ms)
            cells = ", ".join(f"{n} {ms:.2f}" for n, ms in per.items())
            print(f"- {label:11s} {v.name}: all {sum(per.values()):.2f} ms ({cells})")


def medians_by_name(
    runs: Sequence[Measured], values: Callable[[Measured], dict[str, float]]
) -> dict[str, float]:
    """Per name (a process, a topic), the median over `runs` of a figure (0 where a run lacks
    it)."""
    names = sorted({n for r in runs for n in values(r)})
    return {n: statistics.median(values(r).get(n, 0.0) for r in runs) for n in names}


def report_costs(variants: list[Variant]) -> None:
    print(
        "\n## CPU ms per turn per process (median; all the work of the phase's turns, window"
        " and drain; at low rates idle overhead weighs in)"
    )
    for key in ("saturation", "sustainable"):
        for v in variants:
            runs = v.results.get(key, [])
            if not runs:
                continue
            per = medians_by_name(runs, lambda r: r.cpu_ms)
            own = sum(ms for n, ms in per.items() if not n.endswith("(shared)"))
            cells = ", ".join(f"{n} {ms:.2f}" for n, ms in per.items())
            print(f"- {key:11s} {v.name}: own processes {own:.2f} ms ({cells})")
    print("\n## Records per turn per topic (saturation phase)")
    for v in variants:
        runs = v.results.get("saturation", [])
        if runs:
            rec = runs[-1].records
            cells = ", ".join(
                f"{t.removeprefix(v.prefix)} {n:.1f}" for t, n in sorted(rec.items()) if n > 0
            )
            print(f"- {v.name}: {sum(rec.values()):.1f} ({cells})")
    print("\n## MongoDB commands per turn per process (saturation phase)")
    for v in variants:
        runs = v.results.get("saturation", [])
        if not runs:
            continue
        last = runs[-1]
        turns = max(last.turns, 1)
        total = 0.0
        lines: list[str] = []
        for name, counts in sorted(last.mongo.items()):
            work = {c: n for c, n in counts.items() if c not in IGNORED_COMMANDS and n > 0}
            if not work:
                continue
            count = sum(work.values()) / turns
            total += count
            detail = " ".join(f"{c} {n / turns:.2f}" for c, n in sorted(work.items()))
            lines.append(f"{name} {count:.2f} [{detail}]")
        if lines:
            print(f"- {v.name}: {total:.2f} ({'; '.join(lines)})")
    print_lock_time(variants)


def print_lock_time(variants: Sequence[Variant]) -> None:
    """The Mongo stand-in runs one command at a time: the time its lock was held per turn is
    the database's capacity per turn, whatever the number of clients, as long as the machine
    has a core free for the lock's holder (docs/performance.md, "Sixth round")."""
    print(
        "\n## Mongo stand-in: its one command lock held, ms per turn by collection (saturation"
        " phase; share of the time between the phase's snapshots)"
    )
    for v in variants:
        runs = v.results.get("saturation", [])
        if not runs or not runs[-1].lock_ms:
            continue
        last = runs[-1]
        by_collection: dict[str, dict[str, float]] = {}
        for key, ms in last.lock_ms.items():
            name, _, command = key.partition(" ")
            by_collection.setdefault(name, {})[command] = ms
        ranked = sorted(by_collection.items(), key=lambda item: -sum(item[1].values()))
        cells = ", ".join(
            f"{name} {sum(commands.values()):.2f} ["
            + " ".join(f"{c} {ms:.2f}" for c, ms in sorted(commands.items()) if ms >= 0.01)
            + "]"
            for name, commands in ranked
            if sum(commands.values()) >= 0.01
        )
        total = sum(last.lock_ms.values())
        print(
            f"- {v.name}: {total:.2f} ms/turn, held {last.lock_share:.0%} ({cells});"
            f" of which committing to the file {last.commit_ms:.2f} ms/turn"
        )


@contextlib.asynccontextmanager
async def topics_of(bootstrap: str, prefix: str) -> AsyncIterator[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=prefix)
    await ensure_topics(bootstrap, catalogue.specs())
    try:
        yield catalogue
    finally:
        await delete_topics(bootstrap, [s.name for s in catalogue.specs()])


def shared_pids(args: argparse.Namespace) -> dict[str, int | None]:
    kafka_port = int(args.bootstrap.split(",")[0].rsplit(":", 1)[1])
    mongo_port = urlparse(args.mongodb_uri).port or 27017
    return {
        "kafka (shared)": listening_pid(kafka_port),
        "mongo (shared)": listening_pid(mongo_port),
    }


def start_relays(
    args: argparse.Namespace, prefix: str, run_dir: Path, profile: Path, writes_db: str | None
) -> dict[str, subprocess.Popen[bytes]]:
    processes = {}
    label = "writes" if writes_db else "relay"
    for role in ROLES:
        command = [
            sys.executable, "-m", "benchmarks.perf.relay", "--role", role,
            "--bootstrap", args.bootstrap, "--prefix", prefix, "--group", f"{prefix}{role}",
            "--profile", str(profile),
        ]  # fmt: skip
        if writes_db:
            command += ["--mongodb-uri", args.mongodb_uri, "--database", writes_db]
        env = {
            **os.environ,
            "PYTHONPATH": f"{PROBE_DIR}{os.pathsep}{ROOT}",
            "BENCH_MONGO_PROBE_DIR": str(run_dir / f"mongo-{label}"),
            "AGENT_RUNTIME_INSTANCE_NAME": f"{label}-{role}",
        }
        (run_dir / f"mongo-{label}").mkdir(exist_ok=True)
        log = (run_dir / f"{label}-{role}.log").open("ab")
        processes[f"{label}-{role}"] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return processes


async def warm_up(variant: Variant, sessions: int, timeout_s: float) -> None:
    phase = variant.new_phase(sessions)
    await variant.driver.create(phase, timeout_s)
    for session in phase.sessions:
        await variant.driver.submit(phase, session)
    await variant.driver.flush()
    await variant.driver.settle(phase, timeout_s)
    if phase.sent_at:
        raise TimeoutError(f"{variant.name}: {len(phase.sent_at)} warm-up turns never completed")


async def run(args: argparse.Namespace) -> None:
    plan = QUICK if args.quick else FULL
    if args.reps:
        plan = dataclasses.replace(plan, reps=args.reps)
    slow = args.model_latency > 0
    if slow:  # the window must hold many model calls per session
        plan = dataclasses.replace(
            plan, concurrency=args.sessions, saturation_s=max(plan.saturation_s, 20.0)
        )
    if args.latency > 0:
        plan = dataclasses.replace(plan, open_s=args.window)
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    load_start = os.getloadavg()
    print(f"# pipeline benchmark {run_id} ({'quick' if args.quick else 'full'}): {plan}")
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    run_dir = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
    pipe_db, writes_db = f"{run_id}_pipe".replace("-", "_"), f"{run_id}_writes".replace("-", "_")
    shared = shared_pids(args)
    relays: dict[str, subprocess.Popen[bytes]] = {}
    async with contextlib.AsyncExitStack() as stack:
        prefixes = {name: f"{run_id}.{name}." for name in ("relay", "writes", "pipe")}
        for prefix in prefixes.values():
            await stack.enter_async_context(topics_of(args.bootstrap, prefix))
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb_uri)

        async def drop_databases() -> None:
            await mongo.drop_database(pipe_db)
            await mongo.drop_database(writes_db)
            await mongo.close()

        stack.push_async_callback(drop_databases)
        (run_dir / "mongo-pipe").mkdir()
        pipe_prefix = prefixes["pipe"]
        services = ServiceStack(
            run_dir / "stack",
            env={
                "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
                "AGENT_RUNTIME_MONGODB_URI": args.mongodb_uri,
                "AGENT_RUNTIME_MONGODB_DATABASE": pipe_db,
                "AGENT_RUNTIME_TOPIC_PREFIX": pipe_prefix,
                "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
                **{env: f"{pipe_prefix}{name}" for name, env in GROUP_ENV.items()},
                **dict.fromkeys(("LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL")),
                "PYTHONPATH": f"{PROBE_DIR}{os.pathsep}{ROOT}",
                "BENCH_MONGO_PROBE_DIR": str(run_dir / "mongo-pipe"),
                **({DELAY_ENV: str(chunk_delay_s(args.model_latency))} if slow else {}),
            },
            ports={spec.name: free_port() for spec in SERVICES},
        )
        services.start_all()
        stack.callback(services.stop_all, 30.0)
        await services.wait_ready(timeout_s=180)

        def variant(
            name: str, key: str, pids: Callable[[], dict[str, int | None]], groups: list[str]
        ) -> Variant:
            prefix = prefixes[key]
            catalogue = TopicCatalogue(prefix=prefix)
            events = catalogue.name(TopicName.SESSION_EVENTS)
            driver = Driver(
                args.bootstrap,
                catalogue.name(TopicName.COMMANDS),
                [tp for tp in partitions_of(catalogue) if tp.topic == events],
            )
            observer = Observer(
                args.bootstrap,
                partitions_of(catalogue),
                groups,
                run_dir / f"mongo-{key}",
                {"pipe": (mongo, pipe_db), "writes": (mongo, writes_db)}.get(key),
            )
            return Variant(name, prefix, driver, observer, lambda: {**pids(), **shared})

        pipeline = variant(
            "pipeline", "pipe", services.status, [f"{pipe_prefix}{n}" for n in GROUP_ENV]
        )
        await pipeline.driver.start()
        stack.push_async_callback(pipeline.driver.stop)
        await pipeline.observer.start()
        stack.push_async_callback(pipeline.observer.stop)
        await warm_up(pipeline, 50, 120)
        if slow:
            await slow_model(pipeline, plan, args)
            print_end(run_dir)
            return
        profile = await measure(args.bootstrap, partitions_of(TopicCatalogue(prefix=pipe_prefix)))
        profile_path = run_dir / "profile.json"
        profile.save(profile_path)
        print(f"record profile (mean value bytes by type; deltas per call): {profile}")

        def stop_relays() -> None:
            for process in relays.values():
                process.terminate()
            for process in relays.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(10)

        stack.callback(stop_relays)
        relays.update(start_relays(args, prefixes["relay"], run_dir, profile_path, None))
        relays.update(start_relays(args, prefixes["writes"], run_dir, profile_path, writes_db))

        def relay_pids(label: str) -> Callable[[], dict[str, int | None]]:
            return lambda: {n: p.pid for n, p in relays.items() if n.startswith(f"{label}-")}

        variants = [
            variant(
                "relay", "relay", relay_pids("relay"), [f"{prefixes['relay']}{r}" for r in ROLES]
            ),
            variant(
                "relay+writes",
                "writes",
                relay_pids("writes"),
                [f"{prefixes['writes']}{r}" for r in ROLES],
            ),
        ]
        for v in variants:
            await v.driver.start()
            stack.push_async_callback(v.driver.stop)
            await v.observer.start()
            stack.push_async_callback(v.observer.stop)
            await warm_up(v, 50, 120)
        variants.append(pipeline)

        if args.latency > 0:
            await latency_only(variants, plan, args)
            print_end(run_dir)
            return
        for rep in range(plan.reps):
            for v in variants:
                result = await saturation(v, plan)
                v.results.setdefault("saturation", []).append(result)
                print(f"  rep {rep + 1} {v.name}: saturation {result.turns_per_s:,.0f} turns/s")

        for v in variants:
            median = statistics.median(r.turns_per_s for r in v.results["saturation"])
            for fraction in plan.sustainable_fractions:
                rate = max(1.0, median * fraction)
                result = await open_loop(v, rate, plan.open_s, plan)
                print(
                    f"  {v.name}: open loop {rate:,.0f}/s → {result.turns_per_s:,.0f} turns/s, "
                    f"lag bounded: {result.bounded} (skipped {result.skipped})"
                )
                if result.bounded:
                    v.sustainable = rate
                    v.results.setdefault("sustainable", []).append(result)
                    break

        rates = [(pipeline.sustainable or 10.0) * f for f in plan.latency_fractions]
        await latencies(variants, rates, plan)
        hops = await hops_of(variants, args.bootstrap)
        report(variants, plan, rates)
        report_hops(hops)
    print_end(run_dir)


async def latencies(variants: list[Variant], rates: list[float], plan: Plan) -> None:
    for rep in range(plan.reps):
        for rate in rates:
            for v in variants:
                result = await open_loop(v, rate, plan.open_s, plan)
                v.results.setdefault(f"open@{rate:.0f}", []).append(result)
                print(
                    f"  rep {rep + 1} {v.name} @ {rate:,.0f}/s: p99 "
                    f"{pct(result.latencies, 0.99):.0f} ms, bounded {result.bounded}"
                )


async def hops_of(variants: list[Variant], bootstrap: str) -> dict[str, dict[str, HopTimes]]:
    return {
        v.name: await read_hops(
            bootstrap,
            TopicCatalogue(prefix=v.prefix),
            {
                label: [r.session_prefix for r in results]
                for label, results in v.results.items()
                if label == "saturation" or label.startswith("open@")
            },
        )
        for v in variants
    }


async def latency_only(variants: list[Variant], plan: Plan, args: argparse.Namespace) -> None:
    """`--latency RATE`: the open-loop latency at one fixed rate over a longer window, where
    the quick plan's 10 s hold too few turns for a p99."""
    await latencies(variants, [args.latency], plan)
    report_latency(variants, [args.latency])
    report_core_waits(variants, [f"open@{args.latency:.0f}"])
    report_hops(await hops_of(variants, args.bootstrap))


def print_end(run_dir: Path) -> None:
    load_end = os.getloadavg()
    print(f"\nload average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    print(f"logs: {run_dir}")


async def slow_model(pipeline: Variant, plan: Plan, args: argparse.Namespace) -> None:
    runs: list[Measured] = []
    for rep in range(plan.reps):
        result = await saturation(pipeline, plan)
        runs.append(result)
        pipeline.results.setdefault("saturation", []).append(result)
        print(f"  rep {rep + 1} pipeline, slow model: {result.turns_per_s:,.1f} turns/s")
    catalogue = TopicCatalogue(prefix=pipeline.prefix)
    hops = await read_hops(
        args.bootstrap,
        catalogue,
        {f"saturation {i + 1}": [r.session_prefix] for i, r in enumerate(runs)},
    )
    requests = catalogue.name(TopicName.LLM_REQUESTS)
    report_slow_model(
        [r.turns_per_s for r in runs],
        hops,
        model_s=args.model_latency,
        partitions=sum(1 for tp in partitions_of(catalogue) if tp.topic == requests),
        sessions=plan.concurrency,
        cpu_ms=medians_by_name(runs, lambda r: r.cpu_ms),
        records={
            topic.removeprefix(catalogue.prefix): median
            for topic, median in medians_by_name(runs, lambda r: r.records).items()
        },
    )
    print_lock_time([pipeline])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the exit stack stops what the run started and deletes its topics


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short windows, for iterating")
    parser.add_argument(
        "--reps", type=int, default=0, help="repetitions (default: 2 quick, 3 full)"
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    parser.add_argument(
        "--model-latency",
        type=float,
        default=0.0,
        metavar="S",
        help="only the pipeline, with a model taking about S s per call (offline provider"
        " paced), closed loop with --sessions, against one turn in flight per partition",
    )
    parser.add_argument(
        "--sessions", type=int, default=500, help="with --model-latency: sessions in flight"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="RATE",
        help="only the open-loop latency at RATE turns/s (every variant, --reps times,"
        " interleaved), over --window seconds each: no saturation or sustainable search",
    )
    parser.add_argument(
        "--window", type=float, default=60.0, metavar="S", help="with --latency: seconds"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
