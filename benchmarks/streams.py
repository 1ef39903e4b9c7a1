"""Per-delta latency of the gateway's live streams (SSE) against a bare aiokafka consumer of the
same records, at 100 and 1,000 concurrent streams on one gateway replica; memory per stream.

    .venv/bin/python benchmarks/streams.py [--streams 100 1000] [--rounds 5] [--interval 1.0]
                                           [--bootstrap 127.0.0.1:9092]

Runs session-commands (to create the sessions: the stream endpoint checks the read model) and
one gateway (`python -m services.gateway`, uvicorn) as processes, on topics and a database of
this run. The benchmark then opens N SSE streams (httpx, this process), one per session, and a
group-less aiokafka consumer of `llm-stream` (the floor: the same records with no gateway),
and publishes `rounds` LLMTokenDelta records per session, one per session every `interval` s,
spread evenly over the interval (open loop).
Latency of a delta = arrival at the client minus the record's `occurred_at` (set when it is
produced; same host clock). Both readers live in this process, so its CPU is in both figures.
Memory per idle stream = the gateway's RSS growth with N streams open and silent, / N.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.agents import AgentType
from contracts.codec import decode, encode
from contracts.commands import CreateSession
from contracts.llm import LLMTokenDelta
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.gateway.api_keys import hash_api_key, new_api_key

REPO = Path(__file__).resolve().parents[1]
TENANT = "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else 0.0


def latency_ms(occurred_at: str) -> float:
    return (time.time() - datetime.fromisoformat(occurred_at).timestamp()) * 1000


async def sse_reader(
    http: httpx.AsyncClient, session_id: str, ready: asyncio.Event, out: list[float]
) -> None:
    async with http.stream("GET", f"/v1/sessions/{session_id}/events") as response:
        assert response.status_code == 200, await response.aread()
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "stream_started":
                    ready.set()
            elif line.startswith("data: ") and event == "token":
                out.append(latency_ms(json.loads(line[6:])["occurred_at"]))


async def bare_reader(consumer: AIOKafkaConsumer, out: list[float]) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                message = decode(record.value, record.headers, topic=TopicName.LLM_STREAM).message
                out.append(latency_ms(message.occurred_at.isoformat()))


async def measure(
    n: int,
    http: httpx.AsyncClient,
    producer: AIOKafkaProducer,
    catalogue: TopicCatalogue,
    gateway_pid: int,
    args: argparse.Namespace,
) -> tuple[list[float], list[float], float]:
    sessions = [f"bench-s-{i}" for i in range(n)]
    before = rss_kib(gateway_pid)
    via_sse: list[float] = []
    readers: list[asyncio.Task[None]] = []
    for start in range(0, n, 100):  # ramp up: each open reads the session store once
        readies = [asyncio.Event() for _ in sessions[start : start + 100]]
        readers += [
            asyncio.create_task(sse_reader(http, s, r, via_sse))
            for s, r in zip(sessions[start : start + 100], readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    idle_kib = (rss_kib(gateway_pid) - before) / n

    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None)
    await consumer.start()
    partitions = [
        TopicPartition(catalogue.name(TopicName.LLM_STREAM), p) for p in range(catalogue.partitions)
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    via_bare: list[float] = []
    bare = asyncio.create_task(bare_reader(consumer, via_bare))
    topic = catalogue.name(TopicName.LLM_STREAM)
    try:
        # Open loop, spread evenly: session i's delta of round r is due at (r + i / n) *
        # interval, as n independent streams would produce them (no burst of n at once).
        sends = []
        started = time.monotonic()
        for seq in range(args.rounds):
            for i, s in enumerate(sessions):
                due = started + (seq + i / n) * args.interval
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                delta = LLMTokenDelta(
                    id=f"d-{s}-{seq}-{uuid.uuid4().hex[:6]}",
                    session_id=s,
                    tenant_id=TENANT,
                    invocation_id=f"inv-{s}",
                    turn_id=f"turn-{s}",
                    agent=AgentType.ORCHESTRATOR,
                    seq=seq,
                    delta=" token",
                )
                record = encode(delta, source="bench")
                sends.append(
                    await producer.send(topic, record.value, key=record.key, headers=record.headers)
                )
        await asyncio.gather(*sends)
        expected = n * args.rounds
        deadline = time.monotonic() + 120
        # Two tallies filled by n + 1 readers: polled, with a deadline.
        while (  # noqa: ASYNC110
            len(via_sse) < expected or len(via_bare) < expected
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if len(via_sse) < expected or len(via_bare) < expected:
            print(f"  incomplete: sse {len(via_sse)}/{expected}, bare {len(via_bare)}/{expected}")
    finally:
        bare.cancel()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(bare, *readers, return_exceptions=True)
        await consumer.stop()
    return via_sse, via_bare, idle_kib


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    prefix = f"bench-streams-{run}."
    catalogue = TopicCatalogue(prefix=prefix)
    await ensure_topics(args.bootstrap, catalogue.specs())
    key, port = new_api_key(), free_port()
    env = {
        **os.environ,
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
        "AGENT_RUNTIME_MONGODB_URI": args.mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": f"bench_streams_{run}",
        "AGENT_RUNTIME_TOPIC_PREFIX": prefix,
        "AGENT_RUNTIME_SESSION_COMMANDS_CONSUMER_GROUP": f"{prefix}session-commands",
        "AGENT_RUNTIME_HEALTH_PORT": str(free_port()),
        "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
        "AGENT_RUNTIME_GATEWAY_HOST": "127.0.0.1",
        "AGENT_RUNTIME_GATEWAY_PORT": str(port),
        "AGENT_RUNTIME_GATEWAY_API_KEYS": json.dumps({hash_api_key(key): TENANT}),
        "AGENT_RUNTIME_GATEWAY_RATE_LIMIT_BURST": "100000000",
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", module], env=env, cwd=REPO)  # noqa: ASYNC220
        for module in ("services.session_commands", "services.gateway")
    ]
    gateway_pid = processes[1].pid
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=2)
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=max(args.streams) + 20),
        timeout=httpx.Timeout(30.0, read=None),
    )
    try:
        await producer.start()
        most = max(args.streams)
        for i in range(most):
            command = CreateSession(
                id=f"create-{run}-{i}", session_id=f"bench-s-{i}", tenant_id=TENANT
            )
            record = encode(command, source="bench")
            await producer.send(
                catalogue.name(TopicName.COMMANDS),
                record.value,
                key=record.key,
                headers=record.headers,
            )
        await producer.flush()
        deadline = time.monotonic() + 300
        total = -1
        while total < most:
            if time.monotonic() > deadline:
                raise SystemExit(f"sessions not created in time ({total}/{most})")
            try:
                page = await http.get("/v1/sessions", params={"page_size": 1})
                total = page.json()["total"] if page.status_code == 200 else -1
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)

        print(
            f"{'streams':>7} {'path':<22} {'deltas':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8}  idle stream KiB"
        )
        for n in args.streams:
            via_sse, via_bare, idle_kib = await measure(
                n, http, producer, catalogue, gateway_pid, args
            )
            for name, values, memory in (
                ("gateway SSE", via_sse, f"{idle_kib:.1f}"),
                ("bare aiokafka consumer", via_bare, ""),
            ):
                print(
                    f"{n:>7} {name:<22} {len(values):>7} {pct(values, 50):>8.1f} "
                    f"{pct(values, 99):>8.1f} {max(values, default=0):>8.1f}  {memory}"
                )
        print(f"load average: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    finally:
        await http.aclose()
        await producer.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 30)
        await delete_topics(args.bootstrap, [s.name for s in catalogue.specs()])


if __name__ == "__main__":
    asyncio.run(main())
