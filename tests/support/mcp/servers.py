"""The demo MCP server (deploy/local/mcp_demo_server.py) as the tests use it: a stdio server configuration, and
a streamable HTTP server started as a subprocess on a free port, waited for until it answers."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from services.tool_invocation.mcp_servers import McpServer

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_SERVER = REPO_ROOT / "deploy" / "local" / "mcp_demo_server.py"
EXECUTIONS_ENV = "MCP_DEMO_EXECUTIONS"
"""Where the demo server appends one line per execution (its EXECUTIONS_ENV)."""


def stdio_server(
    name: str = "demo", *, executions: Path | None = None, call_timeout_s: float = 10.0
) -> McpServer:
    env: dict[str, str] = {}
    if executions is not None:
        env[EXECUTIONS_ENV] = str(executions)
    return McpServer(
        name=name,
        command=sys.executable,
        args=(str(DEMO_SERVER),),
        env=env,
        cwd=str(REPO_ROOT),
        call_timeout_s=call_timeout_s,
    )


def http_server(name: str, url: str, *, call_timeout_s: float = 10.0) -> McpServer:
    return McpServer(name=name, url=url, call_timeout_s=call_timeout_s)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_http_server(
    *, executions: Path | None = None, port: int | None = None, ready_within_s: float = 30.0
) -> Iterator[str]:
    """Start the demo server over streamable HTTP; yields its endpoint URL; stops it after."""
    port = port or free_port()
    env = dict(os.environ)
    if executions is not None:
        env[EXECUTIONS_ENV] = str(executions)
    process = subprocess.Popen(
        [sys.executable, str(DEMO_SERVER), "--http", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        give_up = time.monotonic() + ready_within_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the demo MCP server exited with {process.returncode}")
            try:
                httpx.get(url, timeout=1.0)  # any HTTP answer: the server listens
                break
            except httpx.TransportError:
                if time.monotonic() > give_up:
                    raise RuntimeError(f"the demo MCP server did not listen on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def executions_of(path: Path, tool: str) -> list[str]:
    """The markers of `tool`'s executions the demo server recorded in `path`."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.partition(" ")[2] for line in lines if line.partition(" ")[0] == tool]
