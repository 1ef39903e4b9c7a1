"""One tool call on an MCP server: circuit breaker → session → `tools/call` under a timeout,
retried only when that cannot run the tool twice.

A retry happens when the failure is retryable (server unavailable, timeout) and either the tool
is declared idempotent in the catalogue or the request was never sent (the server could not be
reached: nothing ran). A tool that answers with an error result (`isError`) ran: that is its
answer, never retried. The outcome is a `ToolOutcome`; a cancelled call raises CancelledError,
which cancels the request on the server (the SDK sends `notifications/cancelled`).
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import anyio
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult, TextContent

from contracts.limits import MAX_TOOL_RESULT_LENGTH
from services.runtime.circuit_breakers import CircuitBreakers
from services.runtime.retry import Backoff
from services.runtime.secret_scrubbing import mask_values
from services.tool_invocation import metrics
from services.tool_invocation.mcp_connection import McpConnection
from services.tool_invocation.mcp_servers import McpServer, McpServers
from services.tool_invocation.tool_errors import (
    CallRejected,
    CallTimedOut,
    CircuitOpen,
    ServerUnavailable,
    ToolCallError,
    UnknownServer,
)

log = logging.getLogger(__name__)

TRUNCATED = "\n[truncated by tool-invocation]"


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What the model is told: the tool's content, or why there is none."""

    content: str
    is_error: bool
    error_class: str | None = None
    """None when the tool answered (even with an error result of its own)."""
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class ToolRetryPolicy:
    max_attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.2, max_s=5.0))

    def delay(
        self,
        attempt: int,
        error: ToolCallError,
        *,
        idempotent: bool,
        remaining_s: float,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds before attempt `attempt + 1`, or None to give up now."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.sent and not idempotent:
            return None  # it may have run: running it again is the caller's (model's) decision
        delay = self.backoff.delay(attempt, rng)
        return None if delay >= remaining_s else delay


class ToolSession(Protocol):
    """The part of the SDK's `mcp.Client` a call uses."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> CallToolResult: ...


class ServerConnection(Protocol):
    """An MCP server's session, kept open (mcp_connection.py)."""

    server: McpServer
    opened: int
    """Sessions opened so far."""

    async def client(self) -> ToolSession: ...
    async def broken(self, client: object, why: str) -> None: ...
    async def close(self) -> None: ...


_SDK_CONNECTION_LOSSES: Final = (
    "Connection closed",
    "SSE stream failed",
    "SSE stream ended without a response",
    "server answered a request with 202 Accepted",
)
"""How the SDK (mcp 2.x, `jsonrpc_dispatcher.py`, `client/streamable_http.py`) words the
CONNECTION_CLOSED errors it makes itself, for a connection or a response stream it lost."""


def connection_lost(error: MCPError) -> bool:
    """The SDK lost the connection (or the request's response stream), as opposed to a server
    that answered with a JSON-RPC error.

    The SDK reports its own losses with code CONNECTION_CLOSED, -32000, which is also the first
    code of the range JSON-RPC leaves to servers for their own errors: a server refusing a call
    with -32000 did answer. Taking that for a dropped connection would kill a healthy stdio
    server under its other calls, run an idempotent tool again and trip the server's breaker.
    So only the SDK's own wording (and no `data`, which it never sets) means a lost connection.
    """
    return (
        error.code == CONNECTION_CLOSED
        and error.error.data is None
        and error.message.startswith(_SDK_CONNECTION_LOSSES)
    )


def _trips(error: BaseException) -> bool:
    return isinstance(error, ToolCallError) and error.trips_breaker


def server_breakers(
    *,
    threshold: int = 5,
    ttl_s: float = 30.0,
    first_trial_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> CircuitBreakers:
    """One circuit per MCP server (named `mcp:<server>`), tripped by server faults only."""
    return CircuitBreakers(
        trips=_trips,
        open_error=CircuitOpen,
        on_state_change=metrics.circuit_state_changed,
        threshold=threshold,
        ttl_s=ttl_s,
        first_trial_s=first_trial_s,
        clock=clock,
    )


class ToolCaller:
    def __init__(
        self,
        servers: McpServers,
        *,
        breakers: CircuitBreakers | None = None,
        retry: ToolRetryPolicy | None = None,
        max_content_chars: int = MAX_TOOL_RESULT_LENGTH,
        rng: random.Random | None = None,
        connect: Callable[[McpServer], ServerConnection] = McpConnection,
    ) -> None:
        self._connections = {name: connect(s) for name, s in servers.servers.items()}
        self._breakers = breakers or server_breakers()
        self._retry = retry or ToolRetryPolicy()
        self.max_content_chars = max_content_chars
        self._rng = rng

    def connection(self, server: str) -> ServerConnection | None:
        return self._connections.get(server)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections.values()))

    async def call(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        idempotent: bool,
        deadline_s: float,
    ) -> ToolOutcome:
        """Never raises a ToolCallError: failures come back as an error `ToolOutcome`."""
        started = time.perf_counter()
        outcome = await self._attempts(server, tool, arguments, idempotent, deadline_s)
        metrics.CALLS.labels(
            server, outcome.error_class or ("error" if outcome.is_error else "ok")
        ).inc()
        metrics.DURATION.labels(server).observe(time.perf_counter() - started)
        return outcome

    async def _attempts(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        idempotent: bool,
        deadline_s: float,
    ) -> ToolOutcome:
        connection = self._connections.get(server)
        give_up_at = time.monotonic() + deadline_s
        attempt = 0
        while True:
            attempt += 1
            try:
                if connection is None:
                    raise UnknownServer(f"no MCP server {server!r} is configured")
                circuit = f"mcp:{server}"
                async with self._breakers.guard(circuit):
                    result = await self._once(
                        connection,
                        tool,
                        dict(arguments),
                        min(
                            connection.server.call_timeout_s,
                            max(0.0, give_up_at - time.monotonic()),
                        ),
                        trial=self._breakers.state(circuit) != "closed",
                    )
            except ToolCallError as error:
                delay = self._retry.delay(
                    attempt,
                    error,
                    idempotent=idempotent,
                    remaining_s=give_up_at - time.monotonic(),
                    rng=self._rng,
                )
                if delay is None:
                    suffix = f" (attempt {attempt})" if attempt > 1 else ""
                    return ToolOutcome(f"{error}{suffix}", True, error.error_class, attempt)
                metrics.RETRIES.labels(server, error.error_class).inc()
                log.info(
                    "tool %s on %s: %s on attempt %d, retrying in %.2f s",
                    tool,
                    server,
                    error.error_class,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            return ToolOutcome(self._content(result), bool(result.is_error), None, attempt)

    async def _once(
        self,
        connection: ServerConnection,
        tool: str,
        arguments: dict[str, Any],
        timeout_s: float,
        *,
        trial: bool = False,
    ) -> CallToolResult:
        client = await connection.client()
        try:
            async with asyncio.timeout(timeout_s):
                return await client.call_tool(tool, arguments)
        except TimeoutError:
            if trial:
                # The circuit opened on faults and its trial got no answer either: the server
                # may be wedged (a stopped or deadlocked process answers nothing, but its
                # connection stays open), and it would never be restarted. The next trial
                # opens a fresh session (a new process for stdio).
                await connection.broken(client, "the circuit's trial call timed out")
            raise CallTimedOut(
                f"tool {tool} on {connection.server.name}: no answer within {timeout_s:g} s"
            ) from None
        except MCPError as error:
            # The server's words: it may quote the headers it was sent (`headers_env`'s secrets,
            # of any shape), which the result carries to the model, session-events and the audit.
            message = mask_values(error.message, connection.server.secret_values(), "credential")
            if connection_lost(error):
                await connection.broken(client, message)
                raise ServerUnavailable(
                    f"MCP server {connection.server.name}: {message}", sent=True
                ) from None
            raise CallRejected(f"tool {tool}: {message}") from None
        except (
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            OSError,
        ) as error:
            await connection.broken(client, type(error).__name__)
            raise ServerUnavailable(
                f"MCP server {connection.server.name}: connection lost ({type(error).__name__})",
                sent=True,
            ) from None

    def _content(self, result: CallToolResult) -> str:
        parts: list[str] = []
        for block in result.content:
            if isinstance(block, TextContent):
                parts.append(block.text)
            else:
                parts.append(f"[{block.type} content omitted]")
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content, ensure_ascii=False))
        return truncated("\n".join(parts), self.max_content_chars)


def truncated(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, the cut marked (what the model reads knows it)."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
