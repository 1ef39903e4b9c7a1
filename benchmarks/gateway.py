"""POST message → 202 through the HTTP gateway, against a bare aiokafka produce of the same record.

    .venv/bin/python benchmarks/gateway.py [--requests 2000] [--concurrency 32] [--repeat 3]
                                           [--rate R] [--block 200] [--replicas 1]
                                           [--bootstrap 127.0.0.1:9092]

The gateway runs as its own process (`python -m services.gateway`, uvicorn), on its own topics,
without the four services: `Prefer: respond-async` makes the 202 mean "the broker acknowledged
the command" (acks=all), which is exactly what the bare produce measures — the physical floor.
The load generator is this process: an aiohttp client (keep-alive connections, C parser) for
the gateway and an aiokafka producer for the floor. It was httpx: its connection pool probes
every idle connection with a syscall before each request, which put ~1 ms of the client's own
CPU into the gateway's figure and none into the floor's.

Per repetition:
1. saturation: `--concurrency` closed-loop workers, `--requests` in all → requests/s;
2. latency at half of the gateway's saturation rate, open loop (fixed arrival times): the
   interval is scheduled send time → response received (202 and body read / broker ack), so
   a request the client sends late counts as late. The two paths alternate in blocks of
   `--block` requests, so a burst of load from elsewhere on the machine hits both alike.
`--replicas N` runs N gateway processes and sends request i to replica i mod N, as a Service
spreads requests over the gateway's pods; saturation, the rate and CPU are then of all of them.
`CPU us/req`: CPU time per request during the saturation phase, of the gateway process (what
a request costs the server) and of this process for the bare produce (what a produce costs its
client); it depends far less on the machine's load than the latencies do. The gateway's CPU
per request in the open loop is printed too: unbatched, a request costs more than at
saturation, so half the saturation rate keeps the gateway's core busier than half.
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
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from contracts.codec import encode
from contracts.commands import SubmitUserMessage
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.gateway.api_keys import hash_api_key, new_api_key
from services.runtime.startup_heap import freeze_startup_heap

REPO = Path(__file__).resolve().parents[1]
Send = Callable[[int], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def saturate(send: Send, requests: int, concurrency: int) -> float:
    counter = iter(range(requests))

    async def worker() -> None:
        for i in counter:
            await send(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - started)


async def open_loop(send: Send, rate: float, requests: int, first: int = 0) -> list[float]:
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        await send(first + i)
        latencies.append(time.perf_counter() - scheduled)

    await asyncio.gather(*(one(i) for i in range(requests)))
    return latencies


async def alternating(
    paths: tuple[Send, Send], rate: float, requests: int, block: int
) -> tuple[list[float], list[float]]:
    """Both paths at `rate`, `block` requests of one, then of the other, until `requests` each."""
    results: tuple[list[float], list[float]] = ([], [])
    for first in range(0, requests, block):
        count = min(block, requests - first)
        for path, out in zip(paths, results, strict=True):
            out.extend(await open_loop(path, rate, count, first))
    return results


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--block", type=int, default=200, help="requests per alternation")
    parser.add_argument(
        "--replicas", type=int, default=1, help="gateway processes, requests round-robin"
    )
    parser.add_argument(
        "--rate", type=float, help="open-loop req/s (default: half the gateway's saturation)"
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/?directConnection=true"),
    )
    args = parser.parse_args()

    prefix = f"bench-gw-{uuid.uuid4().hex[:8]}."
    catalogue = TopicCatalogue(prefix=prefix)
    specs = [catalogue.spec(TopicName.COMMANDS), catalogue.spec(TopicName.SESSION_EVENTS)]
    await ensure_topics(args.bootstrap, specs)
    key = new_api_key()
    ports = [free_port() for _ in range(args.replicas)]
    env = {
        **os.environ,
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": args.bootstrap,
        "AGENT_RUNTIME_MONGODB_URI": args.mongodb_uri,
        "AGENT_RUNTIME_TOPIC_PREFIX": prefix,
        "AGENT_RUNTIME_GATEWAY_HOST": "127.0.0.1",
        "AGENT_RUNTIME_GATEWAY_API_KEYS": json.dumps({hash_api_key(key): "bench"}),
        "AGENT_RUNTIME_GATEWAY_RATE_LIMIT_BURST": "100000000",
        "AGENT_RUNTIME_LOG_LEVEL": "WARNING",
    }
    gateways = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
            [sys.executable, "-m", "services.gateway"],
            env={**env, "AGENT_RUNTIME_GATEWAY_PORT": str(port)},
            cwd=REPO,
        )
        for port in ports
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True
    )
    clients = [
        aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}", "Prefer": "respond-async"},
            connector=aiohttp.TCPConnector(limit=args.concurrency * 2),
            timeout=aiohttp.ClientTimeout(total=30.0),
        )
        for port in ports
    ]

    def gateways_cpu_s() -> float:
        return sum(cpu_s(gateway.pid) for gateway in gateways)

    try:
        for http in clients:
            for _ in range(300):
                try:
                    async with http.get("/health/ready") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        await producer.start()
        topic = catalogue.name(TopicName.COMMANDS)

        async def via_gateway(i: int) -> None:
            async with clients[i % len(clients)].post(
                f"/v1/sessions/bench-{i % 1000}/messages", json={"content": f"message {i}"}
            ) as response:
                body = await response.read()
                assert response.status == 202, body

        async def bare(i: int) -> None:
            command = SubmitUserMessage(
                id=f"cmd-{uuid.uuid4()}",
                session_id=f"bench-{i % 1000}",
                tenant_id="bench",
                message_id=f"m-{uuid.uuid4()}",
                content=f"message {i}",
            )
            record = encode(command, source="bench")
            await producer.send_and_wait(
                topic, record.value, key=record.key, headers=record.headers
            )

        await saturate(via_gateway, 200, args.concurrency)  # warm-up both paths
        await saturate(bare, 200, args.concurrency)
        freeze_startup_heap()  # as the gateway does: no full GC pass walks the set-up objects
        print(
            f"{'run':>3} {'path':<14} {'req/s (sat.)':>12} {'rate':>7} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'CPU us/req':>10}"
        )
        for run in range(1, args.repeat + 1):
            # CPU per request at saturation: the gateway process's, and this process's for the
            # bare produce (its producer; the figure that does not depend on the machine's load).
            before = gateways_cpu_s()
            sat_gateway = await saturate(via_gateway, args.requests, args.concurrency)
            cpu_gateway = (gateways_cpu_s() - before) / args.requests * 1e6
            before = cpu_s(os.getpid())
            sat_bare = await saturate(bare, args.requests, args.concurrency)
            cpu_bare = (cpu_s(os.getpid()) - before) / args.requests * 1e6
            rate = args.rate or sat_gateway / 2
            n = max(200, int(rate * 10))  # ~10 s of load
            before = gateways_cpu_s()
            lat_gateway, lat_bare = await alternating((via_gateway, bare), rate, n, args.block)
            open_loop_cpu = (gateways_cpu_s() - before) / n * 1e6
            for name, sat, lat, cpu in (
                ("gateway", sat_gateway, lat_gateway, cpu_gateway),
                ("bare produce", sat_bare, lat_bare, cpu_bare),
            ):
                print(
                    f"{run:>3} {name:<14} {sat:>12.0f} {rate:>7.0f} {pct(lat, 50):>8.1f}"
                    f" {pct(lat, 99):>8.1f} {cpu:>10.0f}"
                )
            ratio = pct(lat_gateway, 99) / pct(lat_bare, 99)
            print(
                f"    gateway CPU in the open loop: {open_loop_cpu:.0f} us/req,"
                f" {open_loop_cpu * rate / 1e4 / args.replicas:.0f}% of a core per replica"
                f" ({args.replicas}) at {rate:.0f} req/s"
            )
            print(
                f"    p99 gateway / bare produce at {rate:.0f} req/s: {ratio:.2f}x (target <= 2x)"
                f"; load average {os.getloadavg()[0]:.1f}"
            )
    finally:
        for http in clients:
            await http.close()
        await producer.stop()
        for gateway in gateways:
            gateway.terminate()
        for gateway in gateways:
            await asyncio.to_thread(gateway.wait, 30)
        await delete_topics(args.bootstrap, [s.name for s in specs])


if __name__ == "__main__":
    asyncio.run(main())
