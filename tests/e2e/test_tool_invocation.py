"""tool-invocation as a process against the real broker, the Mongo-compatible server and the
demo MCP server (stdio and streamable HTTP): a ToolCallRequested on session-events is answered
with a RecordToolResult on turns; client tools are left alone; a redelivered call is answered
from the kept result; a cancelled turn stops its call; and a kill -9 mid-call never runs a kept
tool twice."""

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from contracts.dead_letters import DeadLetter
from contracts.mid_turn import CancellationReason
from contracts.session_events import SessionErased, TurnCancelled, TurnFailed
from contracts.topics import TopicName
from services.cli.stack import SERVICES, ServiceSpec
from services.runtime.partitioning import partition_for
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.integration.service_harness import Publisher, TopicReader
from tests.support.mcp.servers import DEMO_SERVER, executions_of, running_http_server
from tests.support.mcp.tool_calls import ToolTraffic, tool_call

pytestmark = pytest.mark.e2e

TOOL_INVOCATION = "tool-invocation"
SPEC: ServiceSpec = next(s for s in SERVICES if s.name == TOOL_INVOCATION)


def servers_file(tmp_path: Path, executions: Path, http_url: str | None = None) -> Path:
    path = tmp_path / "mcp_servers.toml"
    text = (
        "[servers.demo]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(DEMO_SERVER))}]\n"
        f"env = {{ MCP_DEMO_EXECUTIONS = {json.dumps(str(executions))} }}\n"
        "call_timeout_s = 30\n"
    )
    if http_url is not None:
        text += f"\n[servers.demo-http]\nurl = {json.dumps(http_url)}\ncall_timeout_s = 30\n"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def executions(tmp_path: Path) -> Path:
    return tmp_path / "executions"


@pytest.fixture
def http_url(tmp_path: Path, executions: Path) -> Iterator[str]:
    with running_http_server(executions=executions) as url:
        yield url


@pytest.fixture
async def service(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    executions: Path,
    http_url: str,
) -> AsyncIterator[Pipeline]:
    env = {
        "AGENT_RUNTIME_MCP_SERVERS_FILE": str(servers_file(tmp_path, executions, http_url)),
        # A crashed holder's claim lapses quickly: the kill -9 test waits for it.
        "AGENT_RUNTIME_TOOL_CLAIM_LEASE_S": "2",
        "AGENT_RUNTIME_COMMIT_INTERVAL_S": "0.2",
    }
    async with running_pipeline(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        unique_suffix,
        tmp_path,
        services=(SPEC,),
        extra_env=env,
    ) as pipeline:
        yield pipeline


@pytest.fixture
async def traffic(service: Pipeline, kafka_bootstrap_servers: str) -> AsyncIterator[ToolTraffic]:
    async with ToolTraffic(kafka_bootstrap_servers, service.catalogue) as traffic:
        yield traffic


async def wait_until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    give_up = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > give_up:
            raise TimeoutError(f"{what}: not within {within_s:g} s")
        await asyncio.sleep(0.05)


async def test_mcp_tools_over_stdio_and_http_are_answered_on_turns(
    traffic: ToolTraffic, executions: Path
) -> None:
    stdio = tool_call("session-stdio", "add", {"a": 2, "b": 3})
    http = tool_call("session-http", "echo", {"text": "over http"}, runs_on="mcp:demo-http")
    client = tool_call("session-client", "read_file", {"path": "x"}, runs_on="client")
    missing = tool_call("session-missing", "add", {"a": 1, "b": 1}, runs_on="mcp:nowhere")
    for call in (client, stdio, http, missing):
        await traffic.publish(call)

    by_stdio = await traffic.result_of(stdio.tool_call_id)
    by_http = await traffic.result_of(http.tool_call_id)
    unknown = await traffic.result_of(missing.tool_call_id)
    assert (by_stdio.content, by_stdio.is_error, by_stdio.source) == ("5", False, "mcp:demo")
    assert by_stdio.session_id == stdio.session_id
    assert by_stdio.turn_id == stdio.turn_id
    assert by_stdio.tenant_id == stdio.tenant_id
    assert (by_http.content, by_http.source) == ("over http", "mcp:demo-http")
    assert unknown.is_error
    assert unknown.content.startswith("unknown_server:")
    results = await traffic.read_to_end()
    assert client.tool_call_id not in {r.tool_call_id for r in results}


async def test_a_redelivered_call_is_answered_from_the_kept_result(
    traffic: ToolTraffic, executions: Path
) -> None:
    call = tool_call("session-again", "echo", {"text": "once"})
    await traffic.publish(call)
    first = await traffic.result_of(call.tool_call_id)
    await traffic.publish(call)  # the same fact again: as after a rebalance or a replay
    give_up = time.monotonic() + 60
    while sum(r.tool_call_id == call.tool_call_id for r in traffic.results) < 2:
        assert time.monotonic() < give_up, "the redelivered call was not answered"
        await traffic.read_to_end()
    again = [r for r in traffic.results if r.tool_call_id == call.tool_call_id]
    assert again[0] == again[1] == first
    assert executions_of(executions, "echo") == ["once"]


async def test_a_cancelled_turn_stops_its_call(
    traffic: ToolTraffic,
    executions: Path,
    mongodb_uri: str,
    mongo_database_name: str,
) -> None:
    call = tool_call("session-cancel", "slow", {"seconds": 60, "marker": "cancel-me"})
    await traffic.publish(call)
    await wait_until(lambda: executions_of(executions, "slow") == ["cancel-me"], 60, "slow ran")
    await traffic.publish(
        TurnCancelled(
            id="cancelled-1",
            session_id=call.session_id,
            tenant_id=call.tenant_id,
            turn_id=call.turn_id,
            user_message_id="message-1",
            agent=call.agent,
            step=0,
            reason=CancellationReason.CANCELLED,
        )
    )
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    try:
        kept = None
        give_up = time.monotonic() + 30
        while kept is None or "result" not in kept:
            assert time.monotonic() < give_up, "the cancelled call kept no result"
            kept = await mongo[mongo_database_name]["tool_results"].find_one(
                {"_id": call.tool_call_id}
            )
            await asyncio.sleep(0.1)
    finally:
        await mongo.close()
    result = kept["result"]
    assert isinstance(result, dict)
    assert result["is_error"] is True
    assert str(result["content"]).startswith("cancelled: stopped: turn cancelled")
    results = await traffic.read_to_end()
    assert call.tool_call_id not in {r.tool_call_id for r in results}  # the turn takes none


async def test_an_erased_session_loses_its_kept_tool_results(
    traffic: ToolTraffic, mongodb_uri: str, mongo_database_name: str
) -> None:
    kept = tool_call("session-erased", "echo", {"text": "personal"})
    other = tool_call("session-kept", "echo", {"text": "stays"})
    for call in (kept, other):
        await traffic.publish(call)
        await traffic.result_of(call.tool_call_id)
    await traffic.publish(
        SessionErased(
            id="erased-1", session_id=kept.session_id, tenant_id=kept.tenant_id, reason="gdpr"
        )
    )
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_uri)
    results = mongo[mongo_database_name]["tool_results"]
    try:
        give_up = time.monotonic() + 30
        while await results.find_one({"session_id": kept.session_id}) is not None:
            assert time.monotonic() < give_up, "the erased session's tool results are still kept"
            await asyncio.sleep(0.1)
        assert await results.find_one({"_id": other.tool_call_id}) is not None
    finally:
        await mongo.close()


def two_sessions_on_one_partition(partitions: int = 12) -> tuple[str, str]:
    first = "session-kill-a"
    target = partition_for(first, partitions)
    index = 0
    while True:
        candidate = f"session-kill-b{index}"
        if partition_for(candidate, partitions) == target:
            return first, candidate
        index += 1


async def test_kill_9_mid_call_never_runs_a_kept_tool_twice(
    service: Pipeline, traffic: ToolTraffic, executions: Path
) -> None:
    """Two sessions on one partition: the slow call's record comes first, so the quick call's
    offset cannot be committed past it. kill -9 while the slow tool runs: both records are
    redelivered. The quick call's result was kept: it is republished, not run again. The slow
    call was not kept: it runs again once its claim's lease has lapsed, and is answered once."""
    slow_session, quick_session = two_sessions_on_one_partition()
    slow = tool_call(slow_session, "slow", {"seconds": 4, "marker": "slow"}, idempotent=False)
    quick = tool_call(quick_session, "echo", {"text": "quick"})
    await traffic.publish(slow)
    await wait_until(lambda: executions_of(executions, "slow") == ["slow"], 60, "slow started")
    await traffic.publish(quick)
    first_quick = await traffic.result_of(quick.tool_call_id)

    service.stack.kill(TOOL_INVOCATION)  # SIGKILL: no drain, no commit, no release
    assert executions_of(executions, "slow") == ["slow"]  # still running when killed
    service.stack.start(TOOL_INVOCATION)
    await service.stack.wait_ready(timeout_s=90.0, names=[TOOL_INVOCATION])

    slow_result = await traffic.result_of(slow.tool_call_id, within_s=90)
    assert slow_result.content == "slept 4 s"
    results = await traffic.read_to_end()
    quick_results = [r for r in results if r.tool_call_id == quick.tool_call_id]
    assert all(r == first_quick for r in quick_results)
    assert len(quick_results) == 2, "the quick call was redelivered and answered again"
    assert executions_of(executions, "echo") == ["quick"], "a kept tool ran twice"
    # The killed call was never kept, so it ran again; its result is published once.
    assert executions_of(executions, "slow") == ["slow", "slow"]
    assert [r.tool_call_id for r in results].count(slow.tool_call_id) == 1


async def test_a_call_whose_turn_ended_while_the_service_was_down_is_not_run(
    service: Pipeline, traffic: ToolTraffic, executions: Path
) -> None:
    """The session was closed (its waiting turn failed) while tool-invocation was stopped: on
    restart the call is not run and nothing is published; the partition goes on."""
    first_session, other_session = two_sessions_on_one_partition()
    warm_up = tool_call(first_session, "echo", {"text": "before"})
    await traffic.publish(warm_up)  # the group's offset on the partition is committed
    await traffic.result_of(warm_up.tool_call_id)

    service.stack.stop(TOOL_INVOCATION)
    orphan = tool_call(other_session, "echo", {"text": "after the close"})
    await traffic.publish(orphan)
    await traffic.publish(
        TurnFailed(
            id="failed-1",
            session_id=orphan.session_id,
            tenant_id=orphan.tenant_id,
            turn_id=orphan.turn_id,
            agent=orphan.agent,
            error_class="session_closed",
            reason="the session was closed",
        )
    )
    service.stack.start(TOOL_INVOCATION)
    await service.stack.wait_ready(timeout_s=90.0, names=[TOOL_INVOCATION])

    after = tool_call(first_session, "echo", {"text": "after the restart"})
    await traffic.publish(after)  # behind the orphan on the same partition
    assert (await traffic.result_of(after.tool_call_id, within_s=90)).content == (
        "after the restart"
    )
    results = await traffic.read_to_end()
    assert orphan.tool_call_id not in {r.tool_call_id for r in results}
    assert executions_of(executions, "echo") == ["before", "after the restart"]


async def test_a_poison_tool_call_is_dead_lettered_and_the_partition_goes_on(
    service: Pipeline, traffic: ToolTraffic, kafka_bootstrap_servers: str
) -> None:
    poison_session, next_session = two_sessions_on_one_partition()
    headers = [("ce_type", b"tool.call_requested.v1"), ("ce_specversion", b"1.0")]
    async with (
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(
            kafka_bootstrap_servers, service.catalogue.name(TopicName.DEAD_LETTERS)
        ) as letters,
    ):
        await publisher.send_raw(
            service.catalogue.name(TopicName.SESSION_EVENTS),
            poison_session.encode(),
            b'{"type": "tool.call_requested.v1", "not": "a call"}',
            headers,
        )
        after = tool_call(next_session, "echo", {"text": "after the poison"})
        await traffic.publish(after)
        assert (await traffic.result_of(after.tool_call_id)).content == "after the poison"
        dead = await letters.wait_for(
            lambda ms: any(isinstance(m, DeadLetter) for m in ms), "a dead letter", within=30
        )
    letter = next(m for m in dead if isinstance(m, DeadLetter))
    assert letter.session_id == poison_session
    assert letter.source_service == TOOL_INVOCATION
    assert letter.origin_topic == service.catalogue.name(TopicName.SESSION_EVENTS)
