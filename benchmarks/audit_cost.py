"""Audit's CPU per fact, side by side with a baseline revision: recorded facts through the real
broker and MongoDB, the audit service as a process.

    .venv/bin/python benchmarks/audit_cost.py --baseline /tmp/main [--sessions 300] [--reps 3]
        [--bootstrap 127.0.0.1:9092] [--mongodb-uri 'mongodb://127.0.0.1:27017/?directConnection=true']

Publishes the conversations of the audit tests (tests/support/audit/conversation.py: 22 facts
each, every kind of command, event and LLM fact, secrets in content) for `--sessions` sessions
to the six audited topics under a prefix of this run. Then, per repetition and revision
(interleaved), starts `python -m services.audit` from the revision's directory (this checkout,
and `--baseline`, e.g. an export made with `git archive <rev> | tar -x -C /tmp/main`) in a
new consumer group with a new database, so every rep audits every fact anew, and reads its
CPU from /proc between its first and its last audit record (start-up excluded): CPU µs per
fact and ms per turn (8 facts per turn, as the pipeline's turns have), and MongoDB commands
per fact (the pipeline benchmark's probe, benchmarks/perf/probe/). The best of the reps is
the robust figure on a shared machine (load only ever adds); min / median / max are printed.
Topics and databases are deleted at the end.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/audit_cost.py` puts benchmarks/ first
    sys.path.insert(0, str(ROOT))

from benchmarks.perf.observe import IGNORED_COMMANDS, cpu_seconds, read_mongo_counts  # noqa: E402
from benchmarks.pipeline import free_port  # noqa: E402
from contracts.topics import TopicCatalogue, TopicName  # noqa: E402
from services.admin.topics import delete_topics, ensure_topics  # noqa: E402
from services.audit.handler import AUDITED_TOPICS  # noqa: E402
from tests.support.audit.conversation import conversation  # noqa: E402

PROBE_DIR = ROOT / "benchmarks" / "perf" / "probe"
FACTS_PER_TURN = 8
WARM_FRACTION = 0.05  # the CPU window opens once this share of the facts is audited


async def publish_facts(bootstrap: str, catalogue: TopicCatalogue, sessions: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    count = 0
    try:
        for index in range(sessions):
            for fact in conversation(f"audit-bench-{index}"):
                encoded = fact.encoded()
                await producer.send(
                    catalogue.name(fact.topic),
                    encoded.value,
                    key=encoded.key,
                    headers=list(encoded.headers),
                )
                count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def audit_records(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
    ends = await consumer.end_offsets(partitions)
    return sum(ends.values())


async def one_run(
    args: argparse.Namespace, catalogue: TopicCatalogue, directory: Path, facts: int, label: str
) -> tuple[float, float]:
    """CPU µs per fact and MongoDB commands per fact of one audit process over all facts."""
    run = uuid.uuid4().hex[:8]
    database = f"audit_bench_{run}"
    probe_dir = Path(tempfile.mkdtemp(prefix=f"audit-bench-{run}-"))
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": f"{PROBE_DIR}{os.pathsep}{directory}",
        "BENCH_MONGO_PROBE_DIR": str(probe_dir),
        "AGENT_RUNTIME_INSTANCE_NAME": "audit",
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
        "AGENT_RUNTIME_MONGODB_URI": args.mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": database,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        "AGENT_RUNTIME_AUDIT_CONSUMER_GROUP": f"{catalogue.prefix}audit-{run}",
        "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
        "AGENT_RUNTIME_HEALTH_PORT": str(free_port()),
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    audit_topic = catalogue.name(TopicName.AUDIT)
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap)
    await consumer.start()
    spec = next(s for s in catalogue.specs() if s.name == audit_topic)
    partitions = [TopicPartition(audit_topic, p) for p in range(spec.partitions)]
    log = probe_dir / "audit.log"
    process = start_audit(directory, env, log)
    try:
        start = await audit_records(consumer, partitions)
        warm, deadline = max(1, int(facts * WARM_FRACTION)), time.monotonic() + args.timeout_s
        cpu0 = n0 = None
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{label}: audit exited ({process.returncode}); see {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: audit did not finish in {args.timeout_s} s")
            cpu, done = cpu_seconds(process.pid), await audit_records(consumer, partitions) - start
            if cpu0 is None and done >= warm:
                cpu0, n0 = cpu, done
            if done >= facts:
                break
            await asyncio.sleep(0.1)
        assert cpu0 is not None
        assert n0 is not None
        counts = read_mongo_counts(probe_dir).get("audit", Counter[str]())
        commands = sum(n for name, n in counts.items() if name not in IGNORED_COMMANDS)
        return (cpu - cpu0) / (done - n0) * 1e6, commands / facts
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        if process.poll() is None:
            process.kill()
        await consumer.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb_uri)
        await client.drop_database(database)
        await client.close()


def start_audit(directory: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "services.audit"],
            cwd=directory,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def summary(values: list[float]) -> str:
    return f"{min(values):7.1f} / {statistics.median(values):7.1f} / {max(values):7.1f}"


async def run(args: argparse.Namespace, revisions: dict[str, Path]) -> None:
    catalogue = TopicCatalogue(prefix=f"audit-bench-{uuid.uuid4().hex[:8]}.")
    wanted = {*catalogue.names(AUDITED_TOPICS), catalogue.name(TopicName.AUDIT)}
    specs = [s for s in catalogue.specs() if s.name in wanted]
    load = os.getloadavg()
    print(f"# audit cost: {args.sessions} sessions, {args.reps} reps; load average {load[0]:.1f}")
    await ensure_topics(args.bootstrap, specs)
    try:
        facts = await publish_facts(args.bootstrap, catalogue, args.sessions)
        print(f"{facts} facts published")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in revisions}
        for rep in range(args.reps):
            for name, directory in revisions.items():
                result = await one_run(args, catalogue, directory, facts, name)
                results[name].append(result)
                print(f"  rep {rep + 1} {name}: {result[0]:.1f} µs of CPU per fact")
    finally:
        await delete_topics(args.bootstrap, [s.name for s in specs])
    load = os.getloadavg()
    print(f"load average at end {load[0]:.1f}\n")
    print(
        "| revision | CPU µs per fact (min / median / max) | ms per turn (8 facts), best "
        "| MongoDB commands per fact |"
    )
    print("|---|---|---|---|")
    for name, values in results.items():
        cpu = [v[0] for v in values]
        commands = statistics.median(v[1] for v in values)
        per_turn = min(cpu) * FACTS_PER_TURN / 1000
        print(f"| {name} | {summary(cpu)} | {per_turn:.2f} | {commands:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="directory of the revision to compare with")
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    args = parser.parse_args()
    revisions = {"this checkout": Path.cwd()}
    if args.baseline:
        revisions = {"baseline": Path(args.baseline).resolve(), **revisions}
    asyncio.run(run(args, revisions))


if __name__ == "__main__":
    main()
