"""The operator commands of `agent-runtime`, run as a user would, against the running pipeline."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from contracts.commands import CreateSession, SubmitUserMessage
from contracts.topics import TopicName
from services.cli.session_client import SessionClient, new_id
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    s = pipeline.settings
    env = {
        **os.environ,
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
        "AGENT_RUNTIME_MONGODB_URI": s.mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": s.mongodb_database,
        "AGENT_RUNTIME_TOPIC_PREFIX": s.topic_prefix,
        "AGENT_RUNTIME_TENANT_ID": s.tenant_id,
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def _until(
    pipeline: Pipeline,
    args: tuple[str, ...],
    wanted: Callable[[subprocess.CompletedProcess[str]], bool],
    timeout_s: float = 60,
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await asyncio.to_thread(_cli, pipeline, *args)
        if (result.returncode == 0 and wanted(result)) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(1.0)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _ndjson(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_operator_commands_against_a_running_pipeline(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    session_id = new_id("ops")
    ids = {"session_id": session_id, "tenant_id": settings.tenant_id}
    async with SessionClient(settings, session_id) as client:
        await client.submit(CreateSession(id=new_id("cmd"), **ids, title="Ops check"))
        outcome = await client.submit(
            SubmitUserMessage(
                id=new_id("cmd"), **ids, message_id=new_id("msg"), content="What is Kafka?"
            )
        )
    assert outcome.completed is not None

    # Every read command's --json is one JSON document (NDJSON for the streams).
    listed = _json(_cli(pipeline, "sessions", "list", "--json"))
    assert [(s["session_id"], s["title"]) for s in listed["sessions"]] == [
        (session_id, "Ops check")
    ]
    assert listed["total"] == 1

    history = _json(_cli(pipeline, "sessions", "history", session_id, "--json"))
    contents = [m["content"] for m in history["messages"]]
    assert contents[0] == "What is Kafka?"
    assert "offline provider" in contents[1]
    assert history["next_cursor"] is None

    shown = _json(_cli(pipeline, "sessions", "show", session_id, "--json"))
    assert shown["session"]["session_id"] == session_id
    assert shown["agent_context"]["current_agent"] == shown["session"]["current_agent"]

    # Reads are tenant-scoped: for another tenant the session does not exist (exit 4).
    for read in (("show", session_id), ("history", session_id)):
        foreign = _cli(pipeline, "sessions", *read, "--tenant", "tenant-other")
        assert foreign.returncode == 4, foreign.stderr
        assert "no session" in foreign.stderr
        assert "What is Kafka?" not in foreign.stdout
    foreign_list = _json(_cli(pipeline, "sessions", "list", "--tenant", "tenant-other", "--json"))
    assert foreign_list["sessions"] == []

    described = _json(_cli(pipeline, "topics", "describe", "--json"))
    assert {t["topic"] for t in described} == {pipeline.catalogue.name(t) for t in TopicName}
    assert all(t["exists"] and t["partitions"] == t["expected_partitions"] for t in described)

    # `send` publishes a validated command; the pipeline answers it.
    sent = _cli(
        pipeline, "send", "--kind", "message", "--session", session_id, "--content", "Thanks!"
    )
    assert sent.returncode == 0, sent.stderr
    answered = await _until(
        pipeline,
        ("sessions", "history", session_id, "--json"),
        lambda r: len(json.loads(r.stdout)["messages"]) == 4,
    )
    assert [m["content"] for m in _json(answered)["messages"]][2] == "Thanks!"

    # Lag drains to zero once the pipeline is idle; each partition names its member.
    group = f"{settings.topic_prefix}session-commands"
    drained = await _until(
        pipeline,
        ("groups", "lag", "--group", group, "--json", "--max-lag", "0"),
        lambda r: True,
    )
    rows = _json(drained)
    assert {row["topic"] for row in rows} == set(
        pipeline.catalogue.names((TopicName.COMMANDS, TopicName.TURNS))
    )
    # Partitions the member holds but never committed on show `committed` null (and as
    # lag their records, none here: nothing was ever published to them).
    assert {row["lag"] for row in rows} <= {0, None}, rows
    assert any(row["committed"] is not None for row in rows), rows
    assert len(rows) == 2 * pipeline.catalogue.partitions
    assert {row["member"]["client_id"] for row in rows} == {group}

    # A malformed upstream record becomes a dead letter; replay refuses it while it is invalid.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            pipeline.catalogue.name(TopicName.COMMANDS),
            b"{not json",
            key=session_id.encode(),
            headers=[("ce_type", b"session.create.v1")],
        )
    finally:
        await producer.stop()
    letters = await _until(
        pipeline,
        # audit reads the commands topic too and dead-letters the record on its own.
        ("dlq", "list", "--json", "--reason", "missing_header", "--service", "session-commands"),
        lambda r: bool(r.stdout.strip()),
    )
    (letter,) = _ndjson(letters)
    assert letter["origin_topic"] == pipeline.catalogue.name(TopicName.COMMANDS)
    assert letter["source_service"] == "session-commands"
    replay = _cli(pipeline, "dlq", "replay", letter["id"])
    assert replay.returncode == 1, replay.stderr
    assert replay.stdout.startswith("failed\t")
    assert "still fails validation" in replay.stdout
    assert "replayed 0, skipped 0, failed 1" in replay.stderr

    audit = await _until(
        pipeline,
        ("audit", "query", "--session", session_id, "--json", "--limit", "1000"),
        lambda r: "turn.completed.v1" in r.stdout,
    )
    records = _json(audit)["records"]
    assert {r["session_id"] for r in records} == {session_id}
    assert "turn.completed.v1" in {r["fact_type"] for r in records}
    succeeded = _cli(
        pipeline, "audit", "query", "--session", session_id, "--outcome", "succeeded",
        "--json", "--limit", "1000",
    )  # fmt: skip
    assert succeeded.returncode == 0, succeeded.stderr
    chosen = _json(succeeded)["records"]
    assert chosen
    assert {r["outcome"] for r in chosen} == {"succeeded"}
    # Audit may record more of the session meanwhile: what was chosen is what a later query has.
    later = _json(_cli(pipeline, "audit", "query", "--session", session_id, "--json",
                       "--limit", "1000"))["records"]  # fmt: skip
    assert [r["id"] for r in chosen] == [r["id"] for r in later if r["outcome"] == "succeeded"][
        : len(chosen)
    ]
    tailed = _ndjson(
        _cli(pipeline, "audit", "tail", "--session", session_id, "--no-follow", "--json")
    )
    assert tailed
    assert {r["session_id"] for r in tailed} == {session_id}

    # `send --kind erase`: the session keeps its skeleton, its history no text.
    erased = _cli(pipeline, "send", "--kind", "erase", "--session", session_id)
    assert erased.returncode == 0, erased.stderr
    assert "session.erase.v1" in erased.stdout
    await _until(
        pipeline,
        ("sessions", "show", session_id, "--json"),
        lambda r: json.loads(r.stdout)["session"]["status"] == "erased",
    )
    emptied = _cli(pipeline, "sessions", "history", session_id)
    assert "What is Kafka?" not in emptied.stdout
