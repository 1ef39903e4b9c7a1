"""The audit service in this process against the real broker and Mongo-compatible server:
a conversation's trail, replay, redaction modes, a malformed upstream command."""

import hashlib
import json
from collections import defaultdict

import pytest

from contracts.audit import AuditOutcome, RedactionMode
from contracts.topics import Service, TopicName
from services.audit.audit_log import AuditQuery
from services.audit.dead_letter_facts import UNDECODABLE_DEAD_LETTER
from services.audit.records import record_id
from tests.integration.audit.harness import (
    AuditEvent,
    Deployment,
    audit_events,
    caught_up,
    deployment,
    publish,
    read_topic,
    running,
    stored_documents,
)
from tests.support.audit.conversation import (
    SECRETS,
    TRACE_ID,
    Fact,
    conversation,
    dead_letter_for,
    malformed_command,
)

pytestmark = pytest.mark.integration

SESSIONS = ("sess-a", "sess-b", "sess-c")


def interleaved(*trails: list[Fact]) -> list[Fact]:
    """Sessions take turns, as concurrent conversations do on the real topics."""
    result: list[Fact] = []
    for i in range(max(map(len, trails))):
        result.extend(trail[i] for trail in trails if i < len(trail))
    return result


async def test_conversations_produce_their_trail_in_order_and_a_replay_adds_no_ids(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        trails = {s: conversation(s) for s in SESSIONS}
        facts = interleaved(*trails.values())
        bad = malformed_command("sess-a")
        published = await publish(env.bootstrap, env.catalogue, [*facts, bad])
        bad_at = published[-1]
        # What session-commands does with the malformed command: a dead letter.
        letter = dead_letter_for(
            bad,
            origin_topic=env.topic(TopicName.COMMANDS),
            partition=bad_at.partition,
            offset=bad_at.offset,
            consumer_group="session-commands",
        )
        await publish(env.bootstrap, env.catalogue, [letter])

        group = f"audit-{unique_suffix}"
        async with running(env.settings(group)):
            await caught_up(env, group)
        events = await audit_events(env)

        # One record per fact, plus two dead letters of the bad command: session-commands'
        # and audit's own (audit cannot decode it either). Nothing dead-letters a dead letter.
        assert len(events) == len(facts) + 2
        assert len({e.record.id for e in events}) == len(events)
        assert len(await read_topic(env.bootstrap, env.topic(TopicName.DEAD_LETTERS))) == 2
        assert_trail_per_session(env, events, trails)
        assert_bad_command_is_dead_lettered(events, letter)
        await assert_log_matches_topic(env, events)
        await assert_no_secret_anywhere(env, events)

        # Replay: a new consumer group from offset 0, same database.
        replay_group = f"audit-replay-{unique_suffix}"
        async with running(env.settings(replay_group)):
            await caught_up(env, replay_group)
        after = await audit_events(env)
        assert {e.record.id for e in after} == {e.record.id for e in events}
        assert len(after) == len(events)  # nothing re-published either: the log had it all
        assert len(await stored_documents(env)) == len(events)
        # The replay group dead-lettered the bad command again (a new dead letter id) ...
        assert len(await read_topic(env.bootstrap, env.topic(TopicName.DEAD_LETTERS))) == 3
        # ... which the trail already had under the bad record's key.


def assert_trail_per_session(
    env: Deployment, events: list[AuditEvent], trails: dict[str, list[Fact]]
) -> None:
    by_session: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in events:  # partition/offset order: a session's records are in one partition
        by_session[event.record.session_id].append(event)
    for session, trail in trails.items():
        records = [e.record for e in by_session[session] if e.record.fact_type != "dead_letter.v1"]
        assert len({e.partition for e in by_session[session]}) == 1
        assert sorted(r.fact_id for r in records) == sorted(f.message.id for f in trail)
        # Per session and source topic, the audit order is the source order.
        for topic in {f.topic for f in trail}:
            expected = [f.message.id for f in trail if f.topic is topic]
            got = [r for r in records if r.origin_topic == env.topic(topic)]
            assert [r.fact_id for r in got] == expected, f"{session} {topic}"
            assert [r.origin_offset for r in got] == sorted(r.origin_offset for r in got)
        outcomes = {r.fact_type: r.outcome for r in records}
        assert outcomes["session.command_rejected.v1"] is AuditOutcome.REJECTED
        assert outcomes["turn.failed.v1"] is AuditOutcome.FAILED
        assert outcomes["llm.failed.v1"] is AuditOutcome.FAILED
        assert outcomes["turn.completed.v1"] is AuditOutcome.SUCCEEDED
        assert outcomes["session.create.v1"] is AuditOutcome.RECORDED
        assert all(r.trace_id == TRACE_ID for r in records)
        assert all(r.id == record_id(topic_of(env, r.origin_topic), r.fact_id) for r in records)


def topic_of(env: Deployment, full_name: str) -> TopicName:
    topic = env.catalogue.topic_of(full_name)
    assert topic is not None
    return topic


def assert_bad_command_is_dead_lettered(events: list[AuditEvent], letter: Fact) -> None:
    dead = [e.record for e in events if e.record.outcome is AuditOutcome.DEAD_LETTERED]
    assert {r.detail["dead_lettered_by"] for r in dead} == {"session-commands", Service.AUDIT}
    assert all(r.fact_type == "dead_letter.v1" for r in dead)
    assert all(r.session_id == "sess-a" for r in dead)
    assert all(r.detail["original_type"] == "session.submit_user_message.v1" for r in dead)
    from_session_commands = next(r for r in dead if r.detail["dead_lettered_by"] != "audit")
    assert from_session_commands.fact_id == letter.message.id
    assert from_session_commands.content is not None
    assert from_session_commands.content.mode is RedactionMode.HASHED
    assert UNDECODABLE_DEAD_LETTER not in {r.fact_type for r in dead}


async def assert_log_matches_topic(env: Deployment, events: list[AuditEvent]) -> None:
    async with env.audit_log() as log:
        for session in SESSIONS:
            page = await log.query(AuditQuery(session_id=session, limit=1000))
            on_topic = [e.record for e in events if e.record.session_id == session]
            assert page.records == on_topic  # same records, same order, same bytes
        intruder = await log.query(AuditQuery(tenant_id="intruder", limit=1000))
        failures = await log.query(AuditQuery(fact_type="turn.failed.v1"))
    assert {r.fact_type for r in intruder.records} == {
        "session.switch_agent.v1",
        "session.command_rejected.v1",
    }
    assert {r.session_id for r in failures.records} == set(SESSIONS)


async def assert_no_secret_anywhere(env: Deployment, events: list[AuditEvent]) -> None:
    published = b"".join(e.raw for e in events).decode()
    stored = json.dumps(await stored_documents(env), default=str)
    for secret in SECRETS:
        assert secret not in published
        assert secret not in stored


@pytest.mark.parametrize("mode", list(RedactionMode))
async def test_each_redaction_mode_on_the_real_topic(
    mode: RedactionMode,
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        trail = conversation("sess-r")
        await publish(env.bootstrap, env.catalogue, trail)
        group = f"audit-{mode}-{unique_suffix}"
        async with running(env.settings(group, mode)):
            await caught_up(env, group)
        events = await audit_events(env)
        assert len(events) == len(trail)
        await assert_no_secret_anywhere(env, events)

        accepted = next(e.record for e in events if e.record.fact_type.endswith("accepted.v1"))
        content = accepted.content
        assert content is not None
        original = "The checkout crashes. Our key is [REDACTED:api_key], please help."
        assert content.sha256 == hashlib.sha256(original.encode()).hexdigest()
        assert content.length == len(original)
        assert content.secrets_removed == 1
        expected_text = {
            RedactionMode.FULL: original,
            RedactionMode.TRUNCATED: original[:12],
            RedactionMode.HASHED: None,
        }[mode]
        assert (content.mode, content.text) == (mode, expected_text)
        completed = [e.record for e in events if e.record.fact_type == "llm.completed.v1"]
        arguments = completed[0].content_parts[0]
        assert arguments.name == "tool_calls[0].arguments"
        assert arguments.label == "switch_agent"
        assert arguments.content.mode is mode
