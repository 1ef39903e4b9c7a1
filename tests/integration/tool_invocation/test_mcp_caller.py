"""The MCP client against the demo MCP server, over stdio and over streamable HTTP: results,
error results, timeouts, cancellation, and a session re-opened after the server died."""

import asyncio
import gc
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.tool_invocation.mcp_connection import McpConnection
from services.tool_invocation.mcp_servers import McpServer, McpServers
from services.tool_invocation.tool_caller import ToolCaller
from services.tool_invocation.tool_errors import ServerUnavailable
from tests.support.mcp.servers import (
    DEMO_SERVER,
    executions_of,
    http_server,
    running_http_server,
    stdio_server,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_http_server(executions=tmp_path_factory.mktemp("http") / "executions") as url:
        yield url


@pytest.fixture(params=["stdio", "http"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> McpServer:
    if request.param == "stdio":
        return stdio_server("demo", executions=tmp_path / "executions", call_timeout_s=2.0)
    return http_server("demo", request.getfixturevalue("http_url"), call_timeout_s=2.0)


@pytest.fixture
async def caller(server: McpServer) -> AsyncIterator[ToolCaller]:
    caller = ToolCaller(McpServers(servers={"demo": server}))
    yield caller
    await caller.close()


async def test_a_tool_answers_and_the_session_is_kept(caller: ToolCaller) -> None:
    first = await caller.call("demo", "add", {"a": 2, "b": 3}, idempotent=True, deadline_s=20)
    second = await caller.call("demo", "echo", {"text": "hi"}, idempotent=False, deadline_s=20)
    assert (first.content, first.is_error, first.error_class) == ("5", False, None)
    assert (second.content, second.is_error) == ("hi", False)
    connection = caller.connection("demo")
    assert connection is not None
    assert connection.opened == 1


async def test_a_tool_error_is_an_error_result_not_retried(caller: ToolCaller) -> None:
    outcome = await caller.call(
        "demo", "fail", {"message": "disk full"}, idempotent=True, deadline_s=20
    )
    assert outcome.is_error
    assert outcome.error_class is None
    assert outcome.attempts == 1
    assert "disk full" in outcome.content


async def test_an_unknown_tool_and_invalid_arguments_are_error_results(
    caller: ToolCaller,
) -> None:
    unknown = await caller.call("demo", "nope", {}, idempotent=True, deadline_s=20)
    invalid = await caller.call("demo", "add", {"a": "x", "b": 1}, idempotent=True, deadline_s=20)
    for outcome in (unknown, invalid):
        assert (outcome.is_error, outcome.error_class, outcome.attempts) == (True, None, 1)
    assert "Unknown tool: nope" in unknown.content
    assert "valid number" in invalid.content


async def test_a_json_rpc_error_of_the_server_is_a_rejection_not_a_lost_connection(
    caller: ToolCaller, server: McpServer, tmp_path: Path
) -> None:
    """-32000 is the SDK's code for a connection it lost and also the first of JSON-RPC's codes
    for a server's own errors: the server answered, so the tool ran once, the session stays."""
    outcome = await caller.call(
        "demo",
        "refuse",
        {"message": "quota sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"},
        idempotent=True,
        deadline_s=20,
    )
    assert (outcome.is_error, outcome.error_class, outcome.attempts) == (True, "rejected", 1)
    assert outcome.content.startswith("tool refuse: quota ")
    assert "sk-proj-" not in outcome.content
    after = await caller.call("demo", "echo", {"text": "alive"}, idempotent=False, deadline_s=20)
    assert after.content == "alive"
    connection = caller.connection("demo")
    assert connection is not None
    assert connection.opened == 1
    if server.command is not None:  # the stdio server's executions are this test's own
        assert len(executions_of(tmp_path / "executions", "refuse")) == 1


async def test_a_server_quoting_its_configured_headers_has_them_masked_in_the_failure(
    http_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that quotes the credentials it was sent (`headers_env`, secrets of any shape:
    no scrubbing pattern knows them) does not get them into the result the model, session-events
    and the audit read. The demo server's `refuse` echoes what it is given, as such a server
    would echo a header."""
    monkeypatch.setenv("SEC2_SEARCH_KEY", "zq7.Custom.Key.0042")
    monkeypatch.setenv("SEC2_SEARCH_AUTH", "Token zq9.Other.Secret.0043")
    server = McpServer(
        name="search",
        url=http_url,
        headers_env={"X-Search-Key": "SEC2_SEARCH_KEY", "Authorization": "SEC2_SEARCH_AUTH"},
        call_timeout_s=5.0,
    )
    caller = ToolCaller(McpServers(servers={"search": server}))
    try:
        outcome = await caller.call(
            "search",
            "refuse",
            {"message": "unknown key zq7.Custom.Key.0042 for zq9.Other.Secret.0043"},
            idempotent=False,
            deadline_s=20,
        )
    finally:
        await caller.close()
    assert (outcome.is_error, outcome.error_class) == (True, "rejected")
    assert "zq7.Custom" not in outcome.content
    assert "zq9.Other" not in outcome.content
    assert outcome.content == (
        "tool refuse: unknown key [REDACTED:credential] for [REDACTED:credential]"
    )


async def test_a_slow_call_times_out_and_the_next_call_still_works(caller: ToolCaller) -> None:
    outcome = await caller.call(
        "demo", "slow", {"seconds": 30, "marker": "t"}, idempotent=False, deadline_s=20
    )
    assert (outcome.is_error, outcome.error_class, outcome.attempts) == (True, "timeout", 1)
    after = await caller.call("demo", "add", {"a": 1, "b": 1}, idempotent=True, deadline_s=20)
    assert after.content == "2"


async def test_a_cancelled_call_leaves_the_session_usable(caller: ToolCaller) -> None:
    running = asyncio.create_task(
        caller.call("demo", "slow", {"seconds": 30, "marker": "c"}, idempotent=False, deadline_s=60)
    )
    await asyncio.sleep(0.5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    after = await caller.call("demo", "echo", {"text": "alive"}, idempotent=False, deadline_s=20)
    assert after.content == "alive"


async def test_a_dead_stdio_server_is_restarted(tmp_path: Path) -> None:
    executions = tmp_path / "executions"
    caller = ToolCaller(McpServers(servers={"demo": stdio_server("demo", executions=executions)}))
    try:
        assert (
            await caller.call("demo", "echo", {"text": "1"}, idempotent=True, deadline_s=20)
        ).content == "1"
        connection = caller.connection("demo")
        assert connection is not None
        crashed = await caller.call("demo", "crash", {}, idempotent=False, deadline_s=20)
        assert (crashed.is_error, crashed.error_class) == (True, "server_unavailable")
        outcome = await caller.call("demo", "echo", {"text": "2"}, idempotent=True, deadline_s=20)
        assert outcome.content == "2"
        assert connection.opened == 2
        assert executions_of(executions, "echo") == ["1", "2"]
    finally:
        await caller.close()


async def test_an_unreachable_server_fails_fast_then_opens_its_circuit() -> None:
    dead = McpServer(name="dead", url="http://127.0.0.1:9/mcp", connect_timeout_s=2.0)
    caller = ToolCaller(McpServers(servers={"dead": dead}))
    try:
        outcomes = [
            await caller.call("dead", "add", {"a": 1, "b": 1}, idempotent=False, deadline_s=5)
            for _ in range(3)
        ]
    finally:
        await caller.close()
    assert all(o.is_error for o in outcomes)
    assert outcomes[0].error_class == "server_unavailable"


async def test_a_call_stopped_while_connecting_leaves_no_session_behind() -> None:
    """A server slow to start (here: never answering the handshake) and the call is stopped
    meanwhile: its session's holder task and the server's process are ended, not left to
    run unreferenced until the service exits."""
    mute = McpServer(
        name="mute",
        command=sys.executable,
        args=("-c", "import time; time.sleep(120)"),
        connect_timeout_s=60.0,
    )
    connection = McpConnection(mute)
    connecting = asyncio.create_task(connection.client())
    await wait_for_task("mcp-mute", within_s=10.0)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert [t for t in asyncio.all_tasks() if t.get_name() == "mcp-mute" and not t.done()] == []


async def wait_for_task(name: str, within_s: float) -> None:
    give_up = asyncio.get_running_loop().time() + within_s
    while not any(t.get_name() == name for t in asyncio.all_tasks()):
        assert asyncio.get_running_loop().time() < give_up, f"no task {name}"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the holder is inside the SDK's connect: the server's process started


async def test_a_connect_timeout_leaves_no_unread_error_behind() -> None:
    """Each connect that timed out left a future whose exception nobody read: asyncio logged
    "Future exception was never retrieved" (an ERROR with a traceback) per timed-out connect."""
    mute = McpServer(
        name="mute",
        command=sys.executable,
        args=("-c", "import time; time.sleep(120)"),
        connect_timeout_s=0.5,
    )
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(str(context["message"])))
    connection = McpConnection(mute)
    try:
        assert await failed_connect(connection) == "MCP server mute: no session within 0.5 s"
        for _ in range(5):  # the futures' done callbacks run, then nothing refers to them
            await asyncio.sleep(0)
        gc.collect()  # an unread future's exception is reported when it is collected
    finally:
        loop.set_exception_handler(previous)
        await connection.close()
    assert reported == []


async def failed_connect(connection: McpConnection) -> str:
    """The connect's error message, its traceback (which refers to the futures) dropped."""
    try:
        await connection.client()
    except ServerUnavailable as error:
        return str(error)
    raise AssertionError("the connect did not fail")


async def test_a_stdio_servers_stderr_is_logged_scrubbed_not_passed_through(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The server's stderr was this service's own: its lines came out raw, neither JSON nor
    scrubbed (a server printing its connection string put the password in the log)."""
    chatty = (
        "import runpy, sys;"
        "sys.stderr.write('connecting to postgres://app:s3cr3t-pw@db/x password=hunter2hunter2\\n');"
        "sys.stderr.flush();"
        f"sys.argv = [{str(DEMO_SERVER)!r}];"
        f"runpy.run_path({str(DEMO_SERVER)!r}, run_name='__main__')"
    )
    server = McpServer(name="chatty", command=sys.executable, args=("-c", chatty))
    caller = ToolCaller(McpServers(servers={"chatty": server}))
    with caplog.at_level(logging.INFO, logger="services.tool_invocation.mcp_connection"):
        try:
            outcome = await caller.call(
                "chatty", "echo", {"text": "alive"}, idempotent=False, deadline_s=20
            )
        finally:
            await caller.close()  # the session's end: its stderr read to the end
    assert outcome.content == "alive"
    lines = [r.getMessage() for r in caplog.records if "(stderr)" in r.getMessage()]
    assert lines == [
        "MCP server chatty (stderr): connecting to postgres://[REDACTED:url_credentials]@db/x "
        "password=[REDACTED:credential]"
    ]
    assert "hunter2hunter2" not in capfd.readouterr().err
