"""`audit tail` and `audit query` against an audit topic and log the service filled."""

import asyncio
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.partitioner import DefaultPartitioner
from pymongo import AsyncMongoClient
from rich.console import Console

from contracts.audit import AuditOutcome
from contracts.registry import type_name
from contracts.topics import TopicName
from services.cli.audit import query, tail
from services.cli.errors import CliError
from tests.integration.audit.harness import (
    PARTITIONS,
    Deployment,
    caught_up,
    deployment,
    publish,
    running,
)
from tests.support.audit.conversation import conversation

pytestmark = pytest.mark.integration

SESSIONS = ("cli-1", "cli-2", "cli-3", "cli-4")


def console(*, terminal: bool = False) -> tuple[Console, io.StringIO]:
    """Piped (tab-separated lines) unless `terminal` (tables and notes for a person)."""
    buffer = io.StringIO()
    return Console(file=buffer, width=400, color_system=None, force_terminal=terminal), buffer


@pytest.fixture
async def filled(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[Deployment]:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        await publish(env.bootstrap, env.catalogue, [f for s in SESSIONS for f in conversation(s)])
        group = f"audit-cli-{unique_suffix}"
        async with running(env.settings(group)):
            await caught_up(env, group)
        yield env


async def test_tail_without_follow_prints_what_matches(filled: Deployment) -> None:
    settings = filled.settings("unused")
    per_session = len(conversation("x"))
    out, buffer = console()
    assert await tail(settings, session_id="cli-3", follow=False, console=out) == per_session
    lines = buffer.getvalue().splitlines()
    assert len(lines) == per_session
    assert all("cli-3" in line for line in lines)

    out, buffer = console()
    printed = await tail(settings, tenant_id="intruder", follow=False, console=out)
    assert printed == 2 * len(SESSIONS)  # each session: the foreign command and its rejection

    out, buffer = console()
    assert await tail(settings, fact_type="turn.failed.v1", follow=False, limit=2, console=out) == 2
    assert "turn.failed.v1" in buffer.getvalue()
    assert "failed" in buffer.getvalue()


async def test_tail_follows_new_records_until_its_limit(filled: Deployment) -> None:
    settings = filled.settings("unused")
    out, buffer = console()
    positioned = asyncio.Event()
    follower = asyncio.create_task(
        tail(
            settings, session_id="cli-new", follow=True, limit=3, console=out, positioned=positioned
        )
    )
    await asyncio.wait_for(positioned.wait(), timeout=30)
    new = conversation("cli-new")[:3]
    # A second audit group: it replays the four old conversations (the log makes that a
    # no-op on the topic) and audits the new facts, which the tail must print, and only them.
    async with running(filled.settings(f"audit-cli-follow-{filled.catalogue.prefix}")):
        await publish(filled.bootstrap, filled.catalogue, new)
        printed = await asyncio.wait_for(follower, timeout=60)
    assert printed == 3
    # Three topics: order across them is arrival order (docs/audit.md), so compare as sets.
    assert sorted(line.split("\t")[3] for line in buffer.getvalue().splitlines()) == sorted(
        type_name(type(f.message)) for f in new
    )


async def test_query_pages_through_the_log(filled: Deployment) -> None:
    settings = filled.settings("unused")
    out, buffer = console(terminal=True)
    page = await query(settings, session_id="cli-2", limit=5, console=out)
    assert len(page.records) == 5
    assert page.next_cursor is not None
    assert f"--after {page.next_cursor}" in buffer.getvalue()
    rest = await query(
        settings, session_id="cli-2", limit=100, after=page.next_cursor, console=console()[0]
    )
    assert len(page.records) + len(rest.records) == len(conversation("x"))
    assert rest.next_cursor is None

    rejected = await query(settings, outcome=AuditOutcome.REJECTED, console=console()[0])
    assert {r.session_id for r in rejected.records} == set(SESSIONS)

    future = await query(settings, since="2999-01-01T00:00:00", console=out)
    assert future.records == []
    assert "no audit records match" in buffer.getvalue()
    with pytest.raises(CliError, match="ISO 8601"):
        await query(settings, until="yesterday", console=out)


async def test_tail_without_follow_ends_on_a_partition_whose_records_retention_removed(
    filled: Deployment,
) -> None:
    settings = filled.settings("unused")
    topic = filled.catalogue.name(TopicName.AUDIT)
    session = "cli-2"
    partition = DefaultPartitioner()(
        session.encode(), list(range(PARTITIONS)), list(range(PARTITIONS))
    )
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(bootstrap_servers=filled.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        end = (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
    assert end > 0
    # What retention does to an old partition: its start offset moves to its end.
    admin = AIOKafkaAdminClient(bootstrap_servers=filled.bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(before_offset=end)}, timeout_ms=30_000)
    finally:
        await admin.close()
    out, buffer = console()
    # It waited for ever for a record at end - 1 that no longer exists.
    printed = await asyncio.wait_for(
        tail(settings, session_id=session, follow=False, console=out), timeout=30
    )
    assert printed == 0
    assert buffer.getvalue() == ""
    out, buffer = console()
    # Every partition, the emptied one among them: it ends too, with the others' records.
    await asyncio.wait_for(tail(settings, follow=False, console=out), timeout=30)


async def test_the_query_command_reads_the_configured_audit_log_collection(
    filled: Deployment,
) -> None:
    # AGENT_RUNTIME_AUDIT_LOG_COLLECTION names the log for the service and the CLI alike; the
    # CLI read `audit_log` whatever the setting, so it found nothing in a renamed log.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(filled.mongodb_uri)
    try:
        database = client[filled.database]
        documents = await database["audit_log"].find({"session_id": "cli-1"}).to_list(None)
        assert documents
        await database["audit_trail"].insert_many(documents)
        await database["audit_log"].delete_many({"session_id": "cli-1"})
    finally:
        await client.close()
    env = {
        **os.environ,
        "AGENT_RUNTIME_MONGODB_URI": filled.mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": filled.database,
        "AGENT_RUNTIME_AUDIT_LOG_COLLECTION": "audit_trail",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from services.cli.main import main; sys.exit(main())",
        "audit",
        "query",
        "--session",
        "cli-1",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    records = json.loads(stdout)["records"]
    assert len(records) == len(documents)
    assert {r["session_id"] for r in records} == {"cli-1"}


async def test_tail_without_follow_limited_shows_the_newest_records_of_every_partition(
    filled: Deployment,
) -> None:
    settings = filled.settings("unused")
    out, buffer = console(terminal=False)
    everything = await tail(settings, follow=False, as_json=True, console=out)
    records = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(records) == everything
    times = [r["occurred_at"] for r in records]
    assert times == sorted(times)  # oldest first, across partitions
    out, buffer = console(terminal=False)
    assert await tail(settings, follow=False, limit=3, as_json=True, console=out) == 3
    newest = [json.loads(line)["id"] for line in buffer.getvalue().splitlines()]
    # It was the end of whichever partition was read last.
    assert newest == [r["id"] for r in records[-3:]]
