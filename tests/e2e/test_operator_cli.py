"""The operator commands of `agent-runtime`, run as a user would, against the running pipeline."""

import asyncio
import os
import subprocess
import sys
import time

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
    pipeline: Pipeline, args: tuple[str, ...], wanted: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await asyncio.to_thread(_cli, pipeline, *args)
        if wanted in result.stdout or time.monotonic() > deadline:
            return result
        await asyncio.sleep(1.0)


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

    listed = _cli(pipeline, "sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert session_id in listed.stdout
    assert "Ops check" in listed.stdout

    history = _cli(pipeline, "sessions", "history", session_id)
    assert history.returncode == 0, history.stderr
    assert "What is Kafka?" in history.stdout
    assert "offline provider" in history.stdout

    shown = _cli(pipeline, "sessions", "show", session_id)
    assert '"current_agent"' in shown.stdout

    # Reads are tenant-scoped: for another tenant the session does not exist.
    for read in (("show", session_id), ("history", session_id)):
        foreign = _cli(pipeline, "sessions", *read, "--tenant", "tenant-other")
        assert foreign.returncode != 0
        assert "no session" in foreign.stdout + foreign.stderr
        assert "What is Kafka?" not in foreign.stdout
    foreign_list = _cli(pipeline, "sessions", "list", "--tenant", "tenant-other")
    assert session_id not in foreign_list.stdout

    described = _cli(pipeline, "topics", "describe")
    assert described.returncode == 0, described.stderr
    for topic in TopicName:
        assert pipeline.catalogue.name(topic) in described.stdout

    # `send` publishes a validated command; the pipeline answers it.
    sent = _cli(
        pipeline, "send", "--kind", "message", "--session", session_id, "--content", "Thanks!"
    )
    assert sent.returncode == 0, sent.stderr
    answered = await _until(pipeline, ("sessions", "history", session_id), "Thanks!")
    assert "   4 " in answered.stdout  # user + answer, twice

    # Lag drains to zero once the pipeline is idle.
    group = f"{settings.topic_prefix}session-commands"
    lag = await _until(pipeline, ("groups", "lag", "--group", group), f"{group}: total lag 0")
    assert f"{group}: total lag 0" in lag.stdout, lag.stdout

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
    letters = await _until(pipeline, ("dlq", "list"), "missing_header")
    assert letters.returncode == 0, letters.stderr
    letter_id = next(
        word
        for line in letters.stdout.splitlines()
        for word in line.split("│")
        if "dead-letter" in word
    ).strip()
    replay = _cli(pipeline, "dlq", "replay", letter_id)
    assert replay.returncode == 1
    assert "still fails validation" in replay.stderr

    audit = await _until(pipeline, ("audit", "query", "--session", session_id), "turn.completed.v1")
    assert "turn.completed.v1" in audit.stdout

    # `send --kind erase`: the session keeps its skeleton, its history no text.
    erased = _cli(pipeline, "send", "--kind", "erase", "--session", session_id)
    assert erased.returncode == 0, erased.stderr
    assert "session.erase.v1" in erased.stdout
    await _until(pipeline, ("sessions", "show", session_id), '"erased"')
    emptied = _cli(pipeline, "sessions", "history", session_id)
    assert "What is Kafka?" not in emptied.stdout
