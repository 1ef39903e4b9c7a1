"""One MCP session per configured server, opened on first use, kept open, re-opened after a
failure.

The SDK's `Client` is an async context manager whose transport (a subprocess for stdio, an
HTTP session for streamable HTTP) lives in anyio task groups that must be entered and left by
the same task. So a holder task of its own enters it, hands the connected client out and waits
until the connection is closed or reported broken; calls from any handler task go through the
handed-out client concurrently (JSON-RPC ids tell them apart).
"""

import asyncio
import contextlib
import logging
import os
import threading
from typing import Any, TextIO

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation

from services.runtime.secret_scrubbing import scrub_text
from services.tool_invocation.mcp_servers import McpServer
from services.tool_invocation.tool_errors import ServerUnavailable

log = logging.getLogger(__name__)

CLIENT_INFO = Implementation(name="agent-runtime.tool-invocation", version="1")


class McpConnection:
    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.opened = 0
        """Sessions opened so far (1 + re-connections), for tests and logs."""

    async def client(self) -> Client:  # a ToolSession (tool_caller.py)
        """The open session, opening it first if needed; ServerUnavailable(sent=False) if that
        fails within the server's connect timeout."""
        client = self._client
        if client is not None and self._holder is not None and not self._holder.done():
            return client
        async with self._lock:
            if self._client is not None and self._holder is not None and not self._holder.done():
                return self._client
            await self._close_holder()
            return await self._open()

    async def broken(self, client: object, why: str) -> None:
        """A call found the connection dead: close it so the next call opens a fresh one."""
        async with self._lock:
            if self._client is client:
                log.warning(
                    "MCP server %s: connection lost (%s); reconnecting on next call",
                    self.server.name,
                    scrub_text(why),  # a server's or transport's words: may quote a credential
                )
                await self._close_holder()

    async def close(self) -> None:
        async with self._lock:
            await self._close_holder()

    async def _open(self) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        holder = asyncio.create_task(self._hold(ready, stop), name=f"mcp-{self.server.name}")
        try:
            async with asyncio.timeout(self.server.connect_timeout_s):
                client = await asyncio.shield(ready)
        except TimeoutError:
            # Settled first: the cancelled holder would set an exception on it that nobody
            # reads, logged by asyncio as "Future exception was never retrieved" per timeout.
            ready.cancel()
            holder.cancel()
            with contextlib.suppress(BaseException):
                await holder
            raise ServerUnavailable(
                f"MCP server {self.server.name}: no session within "
                f"{self.server.connect_timeout_s:g} s",
                sent=False,
            ) from None
        except asyncio.CancelledError:
            # The call was stopped while connecting: nothing else refers to this holder, so
            # left alone it (and a stdio server's process) would live until the service exits.
            ready.cancel()
            holder.cancel()
            with contextlib.suppress(BaseException):
                await holder
            raise
        except Exception as error:
            with contextlib.suppress(BaseException):
                await holder
            raise ServerUnavailable(
                f"MCP server {self.server.name}: cannot connect: {_describe(error)}", sent=False
            ) from None
        self._client, self._holder, self._stop = client, holder, stop
        self.opened += 1
        log.info(
            "MCP server %s: session open (%s, connection %d)",
            self.server.name,
            self.server.transport,
            self.opened,
        )
        return client

    async def _hold(self, ready: "asyncio.Future[Client]", stop: asyncio.Event) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._new_client(stack))
                ready.set_result(client)
                await stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(
                    error if isinstance(error, Exception) else ConnectionError("cancelled")
                )
            elif not isinstance(error, asyncio.CancelledError):
                log.warning("MCP server %s: session ended: %s", self.server.name, _describe(error))
            if isinstance(error, asyncio.CancelledError):
                raise

    def _new_client(self, stack: contextlib.AsyncExitStack) -> Client:
        server = self.server
        if server.command is not None:
            parameters = StdioServerParameters(
                command=server.command,
                args=list(server.args),
                env=server.env or None,
                cwd=server.cwd,
            )
            errlog = _stderr_into_log(server.name, stack)
            stdio: Any = stdio_client(parameters, errlog=errlog)
            return Client(stdio, client_info=CLIENT_INFO, cache=None)
        assert server.url is not None
        http = httpx2.AsyncClient(
            headers=server.http_headers(),
            timeout=httpx2.Timeout(server.connect_timeout_s, read=None),
        )
        stack.push_async_callback(http.aclose)
        transport: Any = streamable_http_client(server.url, http_client=http)
        return Client(transport, client_info=CLIENT_INFO, cache=None)

    async def _close_holder(self) -> None:
        holder, stop = self._holder, self._stop
        self._client = self._holder = self._stop = None
        if holder is None:
            return
        if stop is not None:
            stop.set()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(holder)
        except (TimeoutError, Exception):
            holder.cancel()
            with contextlib.suppress(BaseException):
                await holder


_MAX_STDERR_LINE = 2_000


def _stderr_into_log(server: str, stack: contextlib.AsyncExitStack) -> TextIO:
    """A pipe for a stdio server's stderr, read line by line into this service's log.

    The SDK's default hands the process this service's own stderr: its lines came out raw,
    neither JSON (a `jq` over the service's output stopped at the first) nor scrubbed (a server
    printing its connection string or a token put it in the log). Each line is now one log
    record, scrubbed. The pipe's write end is closed after the session (the stack unwinds the
    client first, which ends the process), so the reader meets the end of the file."""
    read_fd, write_fd = os.pipe()
    writer = os.fdopen(write_fd, "w")

    def read() -> None:
        with os.fdopen(read_fd, "rb") as lines:
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")[:_MAX_STDERR_LINE]
                if line:
                    log.info("MCP server %s (stderr): %s", server, scrub_text(line))

    reader = threading.Thread(target=read, name=f"mcp-{server}-stderr", daemon=True)
    reader.start()

    async def close() -> None:
        writer.close()
        # A grandchild that kept the pipe open would hold it: the thread is a daemon.
        await asyncio.to_thread(reader.join, 5.0)

    stack.push_async_callback(close)
    return writer


def _describe(error: BaseException) -> str:
    """The error for a log line or a result: scrubbed, since a transport's error may quote the
    URL with its credentials or a server's text."""
    return scrub_text(_name(error))


def _name(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_name(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
