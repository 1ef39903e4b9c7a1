"""`dlq list` and `dlq replay` against dead letters on the real broker, filtered, dry and real."""

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.codec import DecodeError, DecodeFailure, encode
from contracts.commands import CreateSession
from contracts.dead_letters import DeadLetter
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from services.cli import dead_letters
from services.cli.dead_letters import DeadLettersUnread, read_dead_letters
from services.cli.errors import ExitCode
from services.cli.settings import CliSettings
from services.runtime.dead_letter import build_dead_letter
from services.runtime.record import Record
from tests.integration.cli.cli_process import ndjson, run_cli

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Letters:
    env: dict[str, str]
    catalogue: TopicCatalogue
    bootstrap: str
    valid: DeadLetter
    """Its original command validates now: replayable."""
    malformed: DeadLetter
    truncated: DeadLetter
    from_llm: DeadLetter
    """Dead-lettered by llm-invocation from llm-requests, a handler error."""


def _letter(
    catalogue: TopicCatalogue,
    topic: TopicName,
    offset: int,
    value: bytes,
    headers: tuple[tuple[str, bytes], ...],
    error: BaseException,
    service: str,
) -> DeadLetter:
    record = Record(catalogue.name(topic), 3, offset, b"sess-dlq-1", value, headers)
    return build_dead_letter(
        record,
        error,
        attempts=1,
        consumer_group=f"{catalogue.prefix}{service}",
        source_service=service,
    )


@pytest.fixture
async def letters(kafka_bootstrap_servers: str, unique_suffix: str) -> AsyncIterator[Letters]:
    catalogue = TopicCatalogue(prefix=f"cli-dlq-{unique_suffix}.")
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    command = encode(
        CreateSession(id="cmd-replay-1", session_id="sess-dlq-1", tenant_id="t-1", title="Replay"),
        source="test",
    )
    valid = _letter(
        catalogue,
        TopicName.COMMANDS,
        10,
        command.value,
        tuple(command.headers),
        DecodeError(DecodeFailure.INVALID_FIELD, "rejected by an older consumer"),
        "session-commands",
    )
    malformed = _letter(
        catalogue,
        TopicName.COMMANDS,
        11,
        b"{not json",
        (("ce_type", b"session.create.v1"),),
        DecodeError(DecodeFailure.MALFORMED_JSON, "Expecting property name"),
        "session-commands",
    )
    truncated = _letter(
        catalogue,
        TopicName.COMMANDS,
        12,
        command.value,
        tuple(command.headers),
        DecodeError(DecodeFailure.OVERSIZE, "too large"),
        "session-commands",
    ).model_copy(update={"original_truncated": True, "original_value_b64": None})
    from_llm = _letter(
        catalogue,
        TopicName.LLM_REQUESTS,
        4,
        b"{}",
        (),
        RuntimeError("provider exploded"),
        "llm-invocation",
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for letter in (valid, malformed, truncated, from_llm):
            encoded = encode(letter, source=letter.source_service)
            await producer.send_and_wait(
                catalogue.name(TopicName.DEAD_LETTERS),
                encoded.value,
                key=encoded.key,
                headers=list(encoded.headers),
            )
    finally:
        await producer.stop()
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
    }
    yield Letters(env, catalogue, kafka_bootstrap_servers, valid, malformed, truncated, from_llm)
    await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def _commands_on_topic(letters: Letters) -> list[bytes]:
    topic = letters.catalogue.name(TopicName.COMMANDS)
    consumer = AIOKafkaConsumer(bootstrap_servers=letters.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(letters.catalogue.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        values: list[bytes] = []
        # Generous: a loaded broker answers offset resets of a fresh topic slowly.
        deadline = time.monotonic() + 90
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(*remaining, timeout_ms=1_000)
            for records in batches.values():
                values += [record.value for record in records if record.value is not None]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read {sorted(remaining)} to its end"
        return values
    finally:
        await consumer.stop()


def test_list_filters_by_origin_topic_reason_service_and_time(letters: Letters) -> None:
    every = run_cli("dlq", "list", "--json", env=letters.env)
    assert every.returncode == 0, every.stderr
    listed = ndjson(every.stdout)
    assert {line["id"] for line in listed} == {
        letters.valid.id,
        letters.malformed.id,
        letters.truncated.id,
        letters.from_llm.id,
    }
    assert all(isinstance(line["partition"], int) and line["offset"] >= 0 for line in listed)

    def ids(*args: str) -> set[str]:
        result = run_cli("dlq", "list", "--json", *args, env=letters.env)
        assert result.returncode == 0, result.stderr
        return {line["id"] for line in ndjson(result.stdout)}

    commands = {letters.valid.id, letters.malformed.id, letters.truncated.id}
    assert ids("--topic", "commands") == commands
    assert ids("--topic", letters.catalogue.name(TopicName.LLM_REQUESTS)) == {letters.from_llm.id}
    assert ids("--reason", "malformed_json", "--reason", "handler_error") == {
        letters.malformed.id,
        letters.from_llm.id,
    }
    assert ids("--service", "llm-invocation") == {letters.from_llm.id}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert ids("--since", tomorrow) == set()
    assert len(ids("--until", tomorrow)) == 4

    piped = run_cli("dlq", "list", "--reason", "malformed_json", env=letters.env)
    assert piped.returncode == 0, piped.stderr
    (row,) = piped.stdout.splitlines()
    assert row.split("\t")[0] == letters.malformed.id
    assert "│" not in piped.stdout


async def test_a_dry_run_reports_without_publishing_and_the_real_replay_is_partial(
    letters: Letters,
) -> None:
    before = await _commands_on_topic(letters)

    dry = run_cli("dlq", "replay", "--topic", "commands", "--dry-run", "--json", env=letters.env)
    assert dry.returncode == 5, dry.stderr  # partial: one would replay, two would not
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["summary"] == {"would_replay": 1, "skipped": 1, "failed": 1}
    outcomes = {r["id"]: r["outcome"] for r in report["results"]}
    assert outcomes == {
        letters.valid.id: "would_replay",
        letters.malformed.id: "failed",
        letters.truncated.id: "skipped",
    }
    assert await _commands_on_topic(letters) == before  # nothing published

    only_valid = run_cli("dlq", "replay", "--dry-run", "--reason", "invalid_field", env=letters.env)
    assert only_valid.returncode == 0, only_valid.stderr
    assert only_valid.stdout.split("\t")[:2] == ["would_replay", letters.valid.id]
    assert "dry run: would replay 1, skipped 0, failed 0; nothing was published" in (
        only_valid.stderr
    )

    none_valid = run_cli("dlq", "replay", "--dry-run", letters.malformed.id, env=letters.env)
    assert none_valid.returncode == 1, none_valid.stderr
    assert "still fails validation" in none_valid.stdout

    replayed = run_cli("dlq", "replay", "--topic", "commands", env=letters.env)
    assert replayed.returncode == 5, replayed.stderr
    assert "replayed 1, skipped 1, failed 1" in replayed.stderr
    original = base64.b64decode(letters.valid.original_value_b64 or "")
    # The broker acknowledged it (send_and_wait): wait until a reader's end offsets show it
    # too; under load a fresh client's first answers for a new topic can lag (a CI run read
    # every partition empty right after the replay).
    deadline = time.monotonic() + 30
    after = await _commands_on_topic(letters)
    while after.count(original) <= before.count(original) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        after = await _commands_on_topic(letters)
    assert after.count(original) == before.count(original) + 1


def test_replay_needs_a_choice_and_names_a_missing_id(letters: Letters) -> None:
    unchosen = run_cli("dlq", "replay", env=letters.env)
    assert unchosen.returncode == 2, unchosen.stderr
    assert "--all" in unchosen.stderr

    missing = run_cli("dlq", "replay", "dead-letter-nope", "--dry-run", env=letters.env)
    assert missing.returncode == 4, missing.stderr
    assert "dead-letter-nope" in missing.stderr

    bad_time = run_cli("dlq", "list", "--since", "yesterday", env=letters.env)
    assert bad_time.returncode == 2, bad_time.stderr


async def test_a_listing_that_cannot_read_to_the_end_fails_instead_of_listing_a_subset(
    letters: Letters, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = CliSettings(
        kafka_bootstrap_servers=letters.bootstrap, topic_prefix=letters.catalogue.prefix
    )
    assert len(await read_dead_letters(settings, limit=100)) == 4

    monkeypatch.setattr(dead_letters, "READ_DEADLINE_S", 0.0)  # no fetch can answer in time
    with pytest.raises(DeadLettersUnread) as refused:
        await read_dead_letters(settings, limit=100)
    assert refused.value.exit_code == ExitCode.UNREACHABLE
    assert letters.catalogue.name(TopicName.DEAD_LETTERS) in str(refused.value)
