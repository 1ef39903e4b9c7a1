"""One MCP tool call through tool-invocation's caller (breaker, timeout, kept-open session),
over stdio and over streamable HTTP, against the bare SDK client on the same session (baseline).

    .venv/bin/python benchmarks/mcp_calls.py [--calls 300] [--concurrency 1,16] [--repeat 2]

The demo MCP server (deploy/local/mcp_demo_server.py) answers `echo`; it runs as its own
process (stdio: a child of the caller; HTTP: started here). Per transport and concurrency:
calls/s and p50 / p99 latency of `ToolCaller.call` and of `mcp.Client.call_tool` alone.
What tool-invocation adds on top of the SDK is the difference; the transports' own cost is the
baseline's.
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.tool_invocation.mcp_connection import McpConnection
from services.tool_invocation.mcp_servers import McpServer, McpServers
from services.tool_invocation.tool_caller import ToolCaller
from tests.support.mcp.servers import running_http_server, stdio_server

Call = Callable[[int], Awaitable[None]]


async def measure(call: Call, calls: int, concurrency: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < calls:
            index = next_index
            next_index += 1
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return calls / elapsed, statistics.median(ordered) * 1000, p99 * 1000


async def run(server: McpServer, calls: int, concurrencies: list[int], repeat: int) -> None:
    caller = ToolCaller(McpServers(servers={server.name: server}))
    bare = McpConnection(server)
    try:

        async def through_caller(index: int) -> None:
            outcome = await caller.call(
                server.name, "echo", {"text": str(index)}, idempotent=True, deadline_s=30
            )
            assert outcome.content == str(index), outcome

        async def sdk_only(index: int) -> None:
            client = await bare.client()
            result = await client.call_tool("echo", {"text": str(index)})
            assert not result.is_error

        # Open the sessions and warm both paths before timing.
        await measure(sdk_only, 50, 4)
        await measure(through_caller, 50, 4)
        for concurrency in concurrencies:
            # Interleaved repetitions: a shared machine's noise hits both alike.
            for repetition in range(1, repeat + 1):
                for name, call in (("bare SDK client", sdk_only), ("ToolCaller", through_caller)):
                    rate, p50, p99 = await measure(call, calls, concurrency)
                    print(
                        f"{server.transport:<16} c={concurrency:<3} #{repetition} {name:<16} "
                        f"{rate:8.0f} calls/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"
                    )
    finally:
        await caller.close()
        await bare.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--repeat", type=int, default=2)
    options = parser.parse_args()
    concurrencies = [int(c) for c in options.concurrency.split(",")]
    await run(stdio_server("demo"), options.calls, concurrencies, options.repeat)
    with running_http_server() as url:
        await run(McpServer(name="demo", url=url), options.calls, concurrencies, options.repeat)


if __name__ == "__main__":
    asyncio.run(main())
