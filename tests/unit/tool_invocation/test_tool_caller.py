"""The protections of an MCP tool call, with a scripted connection: timeouts, the breaker per
server, retries only for idempotent tools (or requests that were never sent)."""

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED, CallToolResult, TextContent

from services.runtime.retry import Backoff
from services.tool_invocation.mcp_servers import McpServer, McpServers
from services.tool_invocation.tool_caller import (
    ToolCaller,
    ToolOutcome,
    ToolRetryPolicy,
    server_breakers,
)
from services.tool_invocation.tool_errors import ServerUnavailable

pytestmark = pytest.mark.unit

Step = Callable[[], Any]
"""One scripted answer: returns a CallToolResult, raises, or sleeps (a coroutine function)."""


def text(value: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=value)], is_error=is_error)


class ScriptedConnection:
    def __init__(self, server: McpServer, script: list[Any]) -> None:
        self.server = server
        self.opened = 0
        self.calls: list[str] = []
        self.broken_count = 0
        self._script = script

    async def client(self) -> "ScriptedConnection":
        step = self._script[0]
        if isinstance(step, ServerUnavailable):  # the connection itself fails: nothing sent
            self._script.pop(0)
            raise step
        self.opened = max(self.opened, 1)
        return self

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
        self.calls.append(name)
        step = self._script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return text("late")
        assert isinstance(step, CallToolResult)
        return step

    async def broken(self, client: object, why: str) -> None:
        self.broken_count += 1

    async def close(self) -> None:
        pass


SERVER = McpServer(name="demo", url="http://demo/mcp", call_timeout_s=0.2)
FAST_RETRY = ToolRetryPolicy(max_attempts=3, backoff=Backoff(initial_s=0.001, max_s=0.001))


def caller_with(script: list[Any], **options: Any) -> tuple[ToolCaller, ScriptedConnection]:
    connection = ScriptedConnection(SERVER, script)
    caller = ToolCaller(
        McpServers(servers={"demo": SERVER}),
        connect=lambda _server: connection,
        retry=options.pop("retry", FAST_RETRY),
        **options,
    )
    return caller, connection


DROPPED = MCPError(CONNECTION_CLOSED, "Connection closed")


async def test_a_dropped_connection_is_retried_for_an_idempotent_tool() -> None:
    caller, connection = caller_with([DROPPED, text("5")])
    outcome = await caller.call("demo", "add", {}, idempotent=True, deadline_s=5)
    assert (outcome.content, outcome.is_error, outcome.attempts) == ("5", False, 2)
    assert connection.broken_count == 1


async def test_a_dropped_connection_is_not_retried_for_a_non_idempotent_tool() -> None:
    caller, connection = caller_with([DROPPED, text("ran twice")])
    outcome = await caller.call("demo", "write", {}, idempotent=False, deadline_s=5)
    assert (outcome.is_error, outcome.error_class, outcome.attempts) == (
        True,
        "server_unavailable",
        1,
    )
    assert connection.calls == ["write"]


async def test_an_unsent_request_is_retried_even_for_a_non_idempotent_tool() -> None:
    caller, connection = caller_with([ServerUnavailable("refused", sent=False), text("ok")])
    outcome = await caller.call("demo", "write", {}, idempotent=False, deadline_s=5)
    assert (outcome.content, outcome.attempts) == ("ok", 2)
    assert connection.calls == ["write"]


async def test_a_timeout_fails_the_attempt_and_is_retried_only_when_idempotent() -> None:
    caller, _ = caller_with([5.0, text("ok")])
    once = await caller.call("demo", "slow", {}, idempotent=False, deadline_s=5)
    assert (once.is_error, once.error_class, once.attempts) == (True, "timeout", 1)

    caller, _ = caller_with([5.0, text("ok")])
    retried = await caller.call("demo", "slow", {}, idempotent=True, deadline_s=5)
    assert (retried.content, retried.attempts) == ("ok", 2)


async def test_the_call_deadline_bounds_the_attempts() -> None:
    caller, _ = caller_with([5.0, 5.0, 5.0, 5.0])
    started = asyncio.get_running_loop().time()
    outcome = await caller.call("demo", "slow", {}, idempotent=True, deadline_s=0.3)
    assert outcome.error_class == "timeout"
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_tool_error_result_and_a_rejection_are_not_retried() -> None:
    caller, connection = caller_with([text("no such file", is_error=True), text("x")])
    outcome = await caller.call("demo", "read", {}, idempotent=True, deadline_s=5)
    assert (outcome.content, outcome.is_error, outcome.error_class) == ("no such file", True, None)

    caller, connection = caller_with([MCPError(-32602, "invalid params"), text("x")])
    outcome = await caller.call("demo", "read", {}, idempotent=True, deadline_s=5)
    assert (outcome.error_class, outcome.attempts) == ("rejected", 1)
    assert connection.broken_count == 0


async def test_a_server_error_with_the_connection_closed_code_is_a_rejection() -> None:
    """A server's own -32000 error is its answer, not the SDK's lost connection."""
    caller, connection = caller_with([MCPError(CONNECTION_CLOSED, "backend refused"), text("x")])
    outcome = await caller.call("demo", "read", {}, idempotent=True, deadline_s=5)
    assert (outcome.content, outcome.error_class, outcome.attempts) == (
        "tool read: backend refused",
        "rejected",
        1,
    )
    assert connection.broken_count == 0


@pytest.mark.parametrize(
    "message",
    ["Connection closed", "SSE stream failed: ReadError", "SSE stream ended without a response"],
)
async def test_the_sdk_s_own_connection_losses_are_server_unavailable(message: str) -> None:
    caller, connection = caller_with([MCPError(CONNECTION_CLOSED, message), text("5")])
    outcome = await caller.call("demo", "add", {}, idempotent=True, deadline_s=5)
    assert (outcome.content, outcome.attempts) == ("5", 2)
    assert connection.broken_count == 1


async def test_the_breaker_opens_per_server_and_fails_fast() -> None:
    breakers = server_breakers(threshold=2, first_trial_s=60, ttl_s=60)
    no_retry = ToolRetryPolicy(max_attempts=1)
    caller, connection = caller_with(
        [DROPPED, DROPPED, text("never")], breakers=breakers, retry=no_retry
    )
    first = await caller.call("demo", "add", {}, idempotent=True, deadline_s=5)
    second = await caller.call("demo", "add", {}, idempotent=True, deadline_s=5)
    third = await caller.call("demo", "add", {}, idempotent=True, deadline_s=5)
    assert [o.error_class for o in (first, second, third)] == [
        "server_unavailable",
        "server_unavailable",
        "circuit_open",
    ]
    assert len(connection.calls) == 2
    assert breakers.state("mcp:demo") == "opened"
    assert breakers.state("mcp:other") == "closed"


async def test_a_trial_that_times_out_drops_the_session_so_a_wedged_server_is_restarted() -> None:
    """A stopped or deadlocked stdio server answers nothing but keeps its pipes open: every
    call timed out, trials too, and its session (the process) was never replaced."""
    breakers = server_breakers(threshold=1, first_trial_s=0.05, ttl_s=0.05)
    no_retry = ToolRetryPolicy(max_attempts=1)
    caller, connection = caller_with([5.0, 5.0, text("ok")], breakers=breakers, retry=no_retry)
    opening = await caller.call("demo", "t", {}, idempotent=True, deadline_s=5)
    assert (opening.error_class, connection.broken_count) == ("timeout", 0)  # one slow call
    trial = await call_once_the_circuit_lets_it(caller)
    assert (trial.error_class, connection.broken_count) == ("timeout", 1)
    recovered = await call_once_the_circuit_lets_it(caller)
    assert (recovered.content, connection.broken_count) == ("ok", 1)


async def call_once_the_circuit_lets_it(caller: ToolCaller) -> ToolOutcome:
    give_up = asyncio.get_running_loop().time() + 5.0
    while True:
        outcome = await caller.call("demo", "t", {}, idempotent=True, deadline_s=5)
        if outcome.error_class != "circuit_open":
            return outcome
        assert asyncio.get_running_loop().time() < give_up, outcome.content
        await asyncio.sleep(0.01)


async def test_tool_errors_do_not_open_the_breaker() -> None:
    breakers = server_breakers(threshold=1)
    caller, _ = caller_with(
        [text("bad", is_error=True), MCPError(-32602, "invalid"), text("ok")], breakers=breakers
    )
    for _ in range(2):
        await caller.call("demo", "t", {}, idempotent=True, deadline_s=5)
    assert (await caller.call("demo", "t", {}, idempotent=True, deadline_s=5)).content == "ok"
    assert breakers.state("mcp:demo") == "closed"


async def test_an_unknown_server_is_an_error_result() -> None:
    caller, _ = caller_with([])
    outcome = await caller.call("elsewhere", "t", {}, idempotent=True, deadline_s=5)
    assert (outcome.is_error, outcome.error_class, outcome.attempts) == (
        True,
        "unknown_server",
        1,
    )


async def test_long_content_is_truncated() -> None:
    caller, _ = caller_with([text("x" * 500)], max_content_chars=100)
    outcome = await caller.call("demo", "t", {}, idempotent=True, deadline_s=5)
    assert len(outcome.content) <= 100
    assert outcome.content.endswith("[truncated by tool-invocation]")
