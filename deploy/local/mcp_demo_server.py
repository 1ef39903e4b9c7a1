"""A tiny MCP server for tests and demos (`make run` configures it as the MCP server `demo`),
built with the SDK's MCPServer (FastMCP in mcp 1.x).

    .venv/bin/python deploy/local/mcp_demo_server.py                         # stdio
    .venv/bin/python deploy/local/mcp_demo_server.py --http --port 8765      # streamable HTTP, /mcp

Tools: `add` (two numbers), `echo` (text back), `slow` (sleeps, then answers), `fail`
(always an error result), `refuse` (a JSON-RPC error instead of a result, code -32000 as many
servers use for their own errors) and `crash` (the process exits mid-call). Every execution that reaches a tool's body appends one line
`<tool> <marker>` to the file named by `MCP_DEMO_EXECUTIONS` (when set), before sleeping:
that is how the tests count executions across restarts of the caller.
"""

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

EXECUTIONS_ENV = "MCP_DEMO_EXECUTIONS"

server: MCPServer = MCPServer("agent-runtime-demo")


def _count(tool: str, marker: str) -> None:
    path = os.environ.get(EXECUTIONS_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as executions:
            executions.write(f"{tool} {marker}\n")


@server.tool()
def add(a: float, b: float) -> str:
    """Add two numbers."""
    _count("add", f"{a:g}+{b:g}")
    total = a + b
    return str(int(total)) if total == int(total) else str(total)


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    _count("echo", text)
    return text


@server.tool()
async def slow(seconds: float, marker: str = "") -> str:
    """Sleep `seconds`, then say so: a long-running tool for cancellation and crash tests."""
    _count("slow", marker)
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def fail(message: str = "the tool failed") -> str:
    """Always fails: the caller receives an error result."""
    _count("fail", message)
    raise ToolError(message)


@server.tool()
def refuse(message: str = "refused") -> str:
    """Answers with a JSON-RPC error (code -32000, a server's own error) instead of a result."""
    _count("refuse", message)
    raise MCPError(code=-32000, message=message)


@server.tool()
def crash() -> str:
    """Kills the server process mid-call (stdio: the connection drops; tests reconnection)."""
    _count("crash", "")
    os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    if options.http:
        server.run("streamable-http", host=options.host, port=options.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
