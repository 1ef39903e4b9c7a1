"""Per-delta latency of the gateway's live streams (SSE) against a bare aiokafka consumer of the
same records, at 100 and 1,000 concurrent streams on one gateway replica; memory per stream.

    .venv/bin/python benchmarks/streams.py [--streams 100 1000] [--rounds 5] [--interval 1.0]
                                           [--readers 4] [--bootstrap 127.0.0.1:9092]

Runs session-commands (to create the sessions: the stream endpoint checks the read model) and
one gateway (`python -m services.gateway`, uvicorn) as processes, on topics and a database of
this run (both deleted at the end). Then, per stream count N:
- `--readers` reader processes (aiohttp) each open their share of the N SSE streams, one per
  session, all at once (the open burst of N clients, e.g. after a replica restart); a refused
  open (503) is retried after 1-4 s as an EventSource would, and counted;
- one more process is the floor: a group-less aiokafka consumer of every `llm-stream`
  partition, positioned at the end;
- this process publishes `rounds` LLMTokenDelta records per session, one per session every
  `interval` s, spread evenly over the interval (open loop).
Latency of a delta = arrival at its reader minus the record's `occurred_at` (set when it is
produced; one host clock). Every reader is a process of its own, so no reader's CPU or pauses
are in another's figure; each process sends its latencies back when it has them all.
Memory per idle stream = the gateway's RSS growth with N streams open and silent, / N.
Gateway CPU per delta = the gateway process's CPU time from the first delta produced until
every reader reported, / the deltas (decode once, fan out, frame, write): the figure that
depends least on the machine's load.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import AsyncMongoClient

from contracts.agents import AgentType
from contracts.codec import decode, encode
from contracts.commands import CreateSession
from contracts.llm import LLMTokenDelta
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.gateway.api_keys import hash_api_key, new_api_key

REPO = Path(__file__).resolve().parents[1]
TENANT = "bench"
_OPEN_TIMEOUT_S = 180.0
_RESULT_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else 0.0


def latency_ms(occurred_at: str) -> float:
    return (time.time() - datetime.fromisoformat(occurred_at).timestamp()) * 1000


# --- reader processes: report ("alive"), then ("ready", refused opens), ("done", latencies) --


async def _read_stream(
    http: aiohttp.ClientSession,
    session_id: str,
    ready: asyncio.Event,
    out: list[float],
    refused: list[str],
) -> None:
    while True:
        async with http.get(f"/v1/sessions/{session_id}/events") as response:
            if response.status == 503:  # an EventSource retries a refused open
                refused.append((await response.json()).get("code", "?"))
                await asyncio.sleep(random.uniform(1.0, 4.0))
                continue
            assert response.status == 200, await response.text()
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                    if event == "stream_started":
                        ready.set()
                elif line.startswith("data: ") and event == "token":
                    out.append(latency_ms(json.loads(line[6:])["occurred_at"]))
            return


async def _sse_reader(conn: Connection, base_url: str, key: str, sessions: list[str]) -> None:
    latencies: list[float] = []
    refused: list[str] = []
    conn.send(("alive", 0))
    expected = conn.recv()  # deltas to wait for; sent when it is time to open the streams
    async with aiohttp.ClientSession(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
    ) as http:
        readies = [asyncio.Event() for _ in sessions]
        readers = [
            asyncio.create_task(_read_stream(http, s, r, latencies, refused))
            for s, r in zip(sessions, readies, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), _OPEN_TIMEOUT_S)
        conn.send(("ready", refused))
        while len(latencies) < expected and not conn.poll():  # noqa: ASYNC110 - a pipe
            await asyncio.sleep(0.05)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    conn.send(("done", latencies))


def sse_reader_process(conn: Connection, base_url: str, key: str, sessions: list[str]) -> None:
    asyncio.run(_sse_reader(conn, base_url, key, sessions))


async def _bare_reader(conn: Connection, bootstrap: str, topic: str, partitions: int) -> None:
    conn.send(("alive", 0))
    expected = conn.recv()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:
            await consumer.position(tp)
        conn.send(("ready", []))
        latencies: list[float] = []
        while len(latencies) < expected and not conn.poll():
            batches = await consumer.getmany(timeout_ms=50)
            for records in batches.values():
                for record in records:
                    message = decode(record.value, record.headers, topic=TopicName.LLM_STREAM)
                    latencies.append(latency_ms(message.message.occurred_at.isoformat()))
    finally:
        await consumer.stop()
    conn.send(("done", latencies))


def bare_reader_process(conn: Connection, bootstrap: str, topic: str, partitions: int) -> None:
    asyncio.run(_bare_reader(conn, bootstrap, topic, partitions))


async def receive(conn: Connection, kind: str, timeout_s: float) -> Any:
    if not await asyncio.to_thread(conn.poll, timeout_s):
        raise TimeoutError(f"no {kind!r} from a reader process in {timeout_s:.0f} s")
    got, value = conn.recv()
    assert got == kind, (got, kind)
    return value


# --- one measurement --------------------------------------------------------------------------


async def measure(
    n: int,
    base_url: str,
    key: str,
    producer: AIOKafkaProducer,
    catalogue: TopicCatalogue,
    gateway_pid: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    sessions = [f"bench-s-{i}" for i in range(n)]
    shares = [
        sessions[i :: args.readers] for i in range(args.readers) if sessions[i :: args.readers]
    ]
    spawn = multiprocessing.get_context("spawn")
    topic = catalogue.name(TopicName.LLM_STREAM)
    pipes: list[Connection] = []
    processes: list[Any] = []
    targets: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        *((sse_reader_process, (base_url, key, share)) for share in shares),
        (bare_reader_process, (args.bootstrap, topic, catalogue.partitions)),
    ]
    for target, extra in targets:
        ours, theirs = spawn.Pipe()
        process = spawn.Process(target=target, args=(theirs, *extra), daemon=True)
        process.start()
        pipes.append(ours)
        processes.append(process)
    sse_pipes, bare_pipe = pipes[:-1], pipes[-1]
    try:
        for pipe in pipes:  # imported and running: the open burst is timed from here
            await receive(pipe, "alive", 120)
        before = rss_kib(gateway_pid)
        opened_at = time.monotonic()
        for pipe, share in zip(sse_pipes, shares, strict=True):
            pipe.send(len(share) * args.rounds)
        refused: Counter[str] = Counter()
        for pipe in sse_pipes:
            refused.update(await receive(pipe, "ready", _OPEN_TIMEOUT_S + 60))
        open_s = time.monotonic() - opened_at
        idle_kib = (rss_kib(gateway_pid) - before) / n
        bare_pipe.send(n * args.rounds)
        await receive(bare_pipe, "ready", 60)

        # Open loop, spread evenly: session i's delta of round r is due at (r + i / n) *
        # interval, as n independent streams would produce them (no burst of n at once).
        sends = []
        cpu_before = cpu_s(gateway_pid)
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
        deadline = time.monotonic() + _RESULT_TIMEOUT_S
        results: list[list[float]] = []
        for pipe in pipes:
            if not await asyncio.to_thread(pipe.poll, max(0.0, deadline - time.monotonic())):
                pipe.send("stop")  # past the deadline: report what arrived
            results.append(await receive(pipe, "done", 30))
        cpu_per_delta_us = (cpu_s(gateway_pid) - cpu_before) / (n * args.rounds) * 1e6
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    via_sse = [latency for share in results[:-1] for latency in share]
    return {
        "sse": via_sse,
        "bare": results[-1],
        "expected": n * args.rounds,
        "idle_kib": idle_kib,
        "open_s": open_s,
        "refused": refused,
        "cpu_per_delta_us": cpu_per_delta_us,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--readers", type=int, default=4, help="SSE reader processes")
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
    base_url = f"http://127.0.0.1:{port}"
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=2)
    http = aiohttp.ClientSession(base_url=base_url, headers={"Authorization": f"Bearer {key}"})
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
                async with http.get("/v1/sessions", params={"page_size": 1}) as page:
                    total = (await page.json())["total"] if page.status == 200 else -1
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)

        print(
            f"{'streams':>7} {'path':<22} {'deltas':>7} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'max ms':>8}  open s (503s)  idle stream KiB"
        )
        for n in args.streams:
            got = await measure(n, base_url, key, producer, catalogue, gateway_pid, args)
            rows = (
                (
                    "gateway SSE",
                    got["sse"],
                    f"{got['open_s']:.1f} ({sum(got['refused'].values())})",
                    f"{got['idle_kib']:.1f}",
                ),
                ("bare aiokafka consumer", got["bare"], "", ""),
            )
            for name, values, opened, memory in rows:
                print(
                    f"{n:>7} {name:<22} {len(values):>7} {pct(values, 50):>8.1f} "
                    f"{pct(values, 99):>8.1f} {max(values, default=0):>8.1f}  "
                    f"{opened:<13}  {memory}"
                )
            print(f"  gateway CPU per delta sent: {got['cpu_per_delta_us']:.0f} us")
            for code, count in got["refused"].items():
                print(f"  opens refused with 503 {code}: {count} (retried after 1-4 s)")
            if len(got["sse"]) < got["expected"] or len(got["bare"]) < got["expected"]:
                print(f"  incomplete: expected {got['expected']} deltas on each path")
        print(f"load average: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})")
    finally:
        await http.close()
        await producer.stop()
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 30)
        await delete_topics(args.bootstrap, [s.name for s in catalogue.specs()])
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb_uri)
        try:
            await mongo.drop_database(env["AGENT_RUNTIME_MONGODB_DATABASE"])  # this run's only
        finally:
            await mongo.close()


if __name__ == "__main__":
    asyncio.run(main())
