"""The handler with an in-memory log and sink: one record per fact, replays, failures."""

import base64
import json

import pytest

from contracts.audit import AuditOutcome, RedactionMode
from contracts.codec import DecodeError, DecodeFailure
from contracts.dead_letters import DeadLetter
from contracts.topics import TopicName, UnexpectedTopic
from services.audit.dead_letter_facts import UNDECODABLE_DEAD_LETTER
from services.audit.handler import AuditHandler
from services.audit.records import AuditEntry, StoredEntry, record_id
from services.audit.redaction import RedactionPolicy
from services.runtime.dead_letter import build_dead_letter
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from tests.support.audit.conversation import (
    SECRETS,
    TRACE_ID,
    Fact,
    conversation,
    dead_letter_for,
    malformed_command,
)
from tests.support.audit.fakes import CATALOGUE, FakeLog, FakeSink, kafka_record

pytestmark = pytest.mark.unit

SPAN = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"


def handler_with(
    log: FakeLog, sink: FakeSink, mode: RedactionMode = RedactionMode.HASHED
) -> AuditHandler:
    return AuditHandler(
        topics=CATALOGUE,
        policy=RedactionPolicy(mode=mode, truncate_chars=10),
        log=log,
        sink=sink,
        span_traceparent=lambda: SPAN,
    )


EXPECTED_OUTCOMES = [
    ("session.create.v1", AuditOutcome.RECORDED),
    ("session.created.v1", AuditOutcome.ACCEPTED),
    ("session.submit_user_message.v1", AuditOutcome.RECORDED),
    ("session.user_message_accepted.v1", AuditOutcome.ACCEPTED),
    ("turn.started.v1", AuditOutcome.RECORDED),
    ("llm.requested.v1", AuditOutcome.RECORDED),
    ("llm.completed.v1", AuditOutcome.SUCCEEDED),
    ("turn.switch_agent.v1", AuditOutcome.RECORDED),
    ("session.agent_switched.v1", AuditOutcome.ACCEPTED),
    ("llm.requested.v1", AuditOutcome.RECORDED),
    ("llm.completed.v1", AuditOutcome.SUCCEEDED),
    ("turn.complete.v1", AuditOutcome.RECORDED),
    ("session.assistant_message_appended.v1", AuditOutcome.RECORDED),
    ("turn.completed.v1", AuditOutcome.SUCCEEDED),
    ("session.switch_agent.v1", AuditOutcome.RECORDED),
    ("session.command_rejected.v1", AuditOutcome.REJECTED),
    ("session.submit_user_message.v1", AuditOutcome.RECORDED),
    ("llm.failed.v1", AuditOutcome.FAILED),
    ("turn.fail.v1", AuditOutcome.RECORDED),
    ("turn.failed.v1", AuditOutcome.FAILED),
    ("session.close.v1", AuditOutcome.RECORDED),
    ("session.closed.v1", AuditOutcome.ACCEPTED),
]


async def test_a_conversation_yields_one_record_per_fact_in_order() -> None:
    log, sink = FakeLog(), FakeSink()
    handle = handler_with(log, sink)
    facts = conversation("s-1")
    for offset, fact in enumerate(facts):
        await handle(kafka_record(fact, offset))

    records = sink.records()
    assert [(r.fact_type, r.outcome) for r in records] == EXPECTED_OUTCOMES
    assert [r.fact_id for r in records] == [f.message.id for f in facts]
    assert [r.id for r in records] == [record_id(f.topic, f.message.id) for f in facts]
    assert {r.session_id for r in records} == {"s-1"}
    assert all(item.key == b"s-1" for item in sink.published)
    assert all(r.trace_id == TRACE_ID for r in records)
    assert [r.origin_offset for r in records] == list(range(len(facts)))
    assert [r.origin_topic for r in records] == [CATALOGUE.name(f.topic) for f in facts]
    assert [r.source_service for r in records] == [f.source for f in facts]
    assert all(entry.published for entry in log.entries.values())
    rejected = records[15]
    assert rejected.tenant_id == "intruder"
    assert rejected.detail["reason"] == "tenant_mismatch"
    llm = records[5]
    assert llm.turn_id is not None
    assert llm.invocation_id is not None
    assert [p.name for p in llm.content_parts] == ["messages[0].content", "messages[1].content"]
    assert [p.label for p in llm.content_parts] == ["system", "user"]


async def test_the_audit_cloud_event_continues_the_trace_and_names_its_cause() -> None:
    sink = FakeSink()
    fact = conversation("s-1")[2]
    await handler_with(FakeLog(), sink)(kafka_record(fact, 0))
    event = json.loads(sink.published[0].value)
    assert event["type"] == "audit.record.v1"
    assert event["source"] == "audit"
    assert event["subject"] == "s-1"
    assert event["traceparent"] == SPAN
    assert event["causationid"] == fact.message.id
    assert event["data"]["trace_id"] == TRACE_ID
    assert dict(sink.published[0].headers)["content-type"] == b"application/cloudevents+json"


async def test_a_correlation_is_carried_into_the_cloud_event_up_to_an_ids_length() -> None:
    # contracts/README.md: a ce_correlationid over 128 characters is not carried on, the record
    # begins its own chain. Carried into the event, a ~1 MB one made an audit record over the
    # record limit: the command, which session-commands applied, was dead-lettered by the audit
    # and missing from the trail.
    command = conversation("s-1")[0].message
    cases = (("c" * 1_010_000, False), ("c" * 129, False), ("c" * 128, True), (".req-7", True))
    for offset, (correlation, carried) in enumerate(cases):
        sink = FakeSink()
        fact = Fact(TopicName.COMMANDS, command, "crm", correlation_id=correlation)
        await handler_with(FakeLog(), sink)(kafka_record(fact, offset))
        event = json.loads(sink.published[0].value)
        assert event["correlationid"] == (correlation if carried else command.id)


async def test_a_record_published_again_carries_its_own_trace_in_the_header() -> None:
    # docs/audit.md: the `traceparent` header is the event's attribute. A fact handled again
    # (a redelivery before the mark, a reused id) runs under a new span; the re-published
    # record must not carry that span beside the stored event's.
    log, sink = FakeLog(), FakeSink(failures=1)
    record = kafka_record(conversation("s-1")[2], 0)
    later_span = "00-0af7651916cd43dd8448eb211c80319c-2222222222222222-01"
    with pytest.raises(RetryableError):
        await handler_with(log, sink)(record)  # stored, not published
    again = AuditHandler(
        topics=CATALOGUE,
        policy=RedactionPolicy(),
        log=log,
        sink=sink,
        span_traceparent=lambda: later_span,
    )
    await again(record)
    [published] = sink.published
    assert json.loads(published.value)["traceparent"] == SPAN
    assert [v for n, v in published.headers if n == "traceparent"] == [SPAN.encode()]


async def test_redelivery_publishes_nothing_new() -> None:
    log, sink = FakeLog(), FakeSink()
    record = kafka_record(conversation("s-1")[0], 0)
    await handler_with(log, sink)(record)
    await handler_with(log, FakeSink())(record)  # a replay by a fresh process
    await handler_with(log, sink)(record)
    assert len(sink.published) == 1
    assert len(log.entries) == 1


async def test_a_failed_publish_is_retried_with_the_same_record_bytes() -> None:
    log, sink = FakeLog(), FakeSink(failures=1)
    handle = handler_with(log, sink)
    record = kafka_record(conversation("s-1")[3], 7)
    with pytest.raises(RetryableError):
        await handle(record)
    first = next(iter(log.entries.values()))
    assert not first.published
    await handle(record)
    assert len(sink.published) == 1
    assert sink.records()[0] == first.entry.record  # record time of the first attempt kept


async def test_a_malformed_source_record_is_left_to_the_runtime_to_dead_letter() -> None:
    raw = kafka_record(malformed_command("s-1"), 0)
    with pytest.raises(DecodeError):
        await handler_with(FakeLog(), FakeSink())(raw)


async def test_a_record_of_the_wrong_type_for_its_topic_does_not_decode() -> None:
    fact = conversation("s-1")[1]  # SessionCreated, a session event
    misplaced = Record(
        topic=CATALOGUE.name(TopicName.COMMANDS),
        partition=0,
        offset=0,
        key=b"s-1",
        value=fact.encoded().value,
        headers=tuple(fact.encoded().headers),
    )
    with pytest.raises(DecodeError):
        await handler_with(FakeLog(), FakeSink())(misplaced)


async def test_a_topic_audit_does_not_read_is_refused() -> None:
    record = kafka_record(conversation("s-1")[0], 0)
    stray = Record("unit.llm-stream", 0, 0, record.key, record.value, record.headers)
    with pytest.raises(UnexpectedTopic):
        await handler_with(FakeLog(), FakeSink())(stray)


async def test_the_dead_letter_of_a_malformed_command_is_in_the_trail_as_dead_lettered() -> None:
    sink = FakeSink()
    raw = malformed_command("s-1")
    letter = dead_letter_for(
        raw, origin_topic="unit.commands", partition=2, offset=40, consumer_group="sc"
    )
    await handler_with(FakeLog(), sink, RedactionMode.FULL)(kafka_record(letter, 5))
    (record,) = sink.records()
    assert record.outcome is AuditOutcome.DEAD_LETTERED
    assert record.fact_type == "dead_letter.v1"
    assert record.id == record_id(TopicName.DEAD_LETTERS, letter.message.id)
    assert record.session_id == "s-1"
    assert record.detail["dead_letter_origin_topic"] == "unit.commands"
    assert record.detail["dead_letter_origin_offset"] == 40
    assert record.detail["original_type"] == "session.submit_user_message.v1"
    assert record.detail["reason"] == "malformed_json"
    assert record.content is not None
    assert record.content.text is not None
    assert record.content.text.startswith('{"type": "session.submit_user_message.v1"')
    assert record.content.secrets_removed >= 1


async def test_a_dead_letter_claims_the_tenant_of_its_original_when_it_parses() -> None:
    sink = FakeSink()
    letter = dead_letter_for(
        malformed_command("s-1"),
        origin_topic="unit.commands",
        partition=0,
        offset=1,
        consumer_group="sc",
    )
    assert isinstance(letter.message, DeadLetter)
    original = {"type": "session.close.v1", "tenant_id": "acme", "turn_id": "bad id!"}
    patched = letter.message.model_copy(
        update={"original_value_b64": base64.b64encode(json.dumps(original).encode()).decode()}
    )
    await handler_with(FakeLog(), sink)(kafka_record(type(letter)(letter.topic, patched, "x"), 0))
    (record,) = sink.records()
    assert record.tenant_id == "acme"
    assert record.turn_id is None  # not a valid id: not claimed


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"\xff\xfe not json", ()),
        (None, ()),
        (b'{"type": "dead_letter.v1"}', (("ce_type", b"dead_letter.v1"),)),
        (b"[]", (("content-type", b"application/cloudevents+json"),)),
    ],
)
async def test_a_broken_record_on_dead_letters_is_audited_and_never_raises(
    value: bytes | None, headers: tuple[tuple[str, bytes], ...]
) -> None:
    sink = FakeSink()
    topic = CATALOGUE.name(TopicName.DEAD_LETTERS)
    broken = Record(topic, 3, 99, b"s-9", value, headers, timestamp_ms=1_767_600_000_000)
    await handler_with(FakeLog(), sink)(broken)
    await handler_with(FakeLog(), sink)(broken)  # again, in another process
    first, second = sink.records()
    assert first.id == second.id == record_id(TopicName.DEAD_LETTERS, "undecodable:3:99")
    assert first.fact_type == UNDECODABLE_DEAD_LETTER
    assert first.outcome is AuditOutcome.DEAD_LETTERED
    assert first.session_id == "s-9"
    assert first.origin_offset == 99
    assert "error" in first.detail
    # Every audit event carries correlationid (docs/audit.md): a broken record begins its own
    # chain, as a fact without a ce_correlationid does.
    event = json.loads(sink.published[0].value)
    assert event["correlationid"] == event["causationid"] == "undecodable:3:99"


async def test_a_dead_letter_that_breaks_the_view_is_still_audited() -> None:
    class Exploding:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self) -> str | None:
            self.calls += 1
            if self.calls == 1:
                raise ValueError("boom")
            return None

    sink = FakeSink()
    letter = dead_letter_for(
        malformed_command("s-1"),
        origin_topic="unit.commands",
        partition=0,
        offset=1,
        consumer_group="sc",
    )
    handler = AuditHandler(
        topics=CATALOGUE,
        policy=RedactionPolicy(),
        log=FakeLog(),
        sink=sink,
        span_traceparent=Exploding(),
    )
    await handler(kafka_record(letter, 0))
    (record,) = sink.records()
    assert record.fact_type == UNDECODABLE_DEAD_LETTER
    assert record.detail["error"] == "ValueError: boom"


@pytest.mark.parametrize("mode", list(RedactionMode))
async def test_no_secret_appears_in_any_output(mode: RedactionMode) -> None:
    log, sink = FakeLog(), FakeSink()
    handle = handler_with(log, sink, mode)
    raw = malformed_command("s-1")
    facts = [
        *conversation("s-1"),
        dead_letter_for(
            raw, origin_topic="unit.commands", partition=0, offset=3, consumer_group="sc"
        ),
    ]
    for offset, fact in enumerate(facts):
        await handle(kafka_record(fact, offset))
    undecodable = Record(
        CATALOGUE.name(TopicName.DEAD_LETTERS), 0, 500, raw.key, raw.value, raw.headers
    )
    await handle(undecodable)

    published = b"".join(
        r.value + b"".join(name.encode() + v for name, v in r.headers) for r in sink.published
    ).decode()
    stored = "".join(e.entry.record.model_dump_json() for e in log.entries.values())
    for secret in SECRETS:
        assert secret not in published, f"{secret} leaked to the audit topic ({mode})"
        assert secret not in stored, f"{secret} leaked to the audit log ({mode})"
    removed = sum(
        (r.content.secrets_removed if r.content else 0)
        + sum(p.content.secrets_removed for p in r.content_parts)
        for r in sink.records()
    )
    assert removed >= len(SECRETS)


async def test_records_carry_content_per_policy() -> None:
    sinks = {mode: FakeSink() for mode in RedactionMode}
    fact = conversation("s-1")[2]  # SubmitUserMessage
    for mode, sink in sinks.items():
        await handler_with(FakeLog(), sink, mode)(kafka_record(fact, 0))
    full, truncated, hashed = (sinks[m].records()[0].content for m in RedactionMode)
    assert full is not None
    assert truncated is not None
    assert hashed is not None
    assert full.mode is RedactionMode.FULL
    assert full.text is not None
    assert "The checkout crashes." in full.text
    assert "[REDACTED:api_key]" in full.text
    assert truncated.mode is RedactionMode.TRUNCATED
    assert truncated.text == full.text[:10]
    assert hashed.mode is RedactionMode.HASHED
    assert hashed.text is None
    assert full.sha256 == truncated.sha256 == hashed.sha256
    assert full.length == truncated.length == hashed.length == len(full.text)


async def test_an_author_name_is_content_redacted_by_policy() -> None:
    # docs/audit.md, Erasure: under `hashed` the trail holds no text of the session.
    sink = FakeSink()
    facts = conversation("s-1")
    for offset, fact in enumerate(facts[:4]):  # up to UserMessageAccepted
        await handler_with(FakeLog(), sink, RedactionMode.HASHED)(kafka_record(fact, offset))
    for record, raw in zip(sink.records(), sink.published, strict=True):
        assert b"Ann" not in raw.value
        assert "author_name" not in record.detail
    submitted = sink.records()[2]
    assert submitted.fact_type == "session.submit_user_message.v1"
    [part] = [p for p in submitted.content_parts if p.name == "author_name"]
    assert part.content.mode is RedactionMode.HASHED
    assert part.content.length == len("Ann")


async def test_audits_own_dead_letters_from_two_groups_share_one_record_id() -> None:
    """A replay in a new audit group dead-letters the same bad record again, under a new
    dead-letter id (the runtime's ids include the group); the trail must not grow."""
    log, sink = FakeLog(), FakeSink()
    handle = handler_with(log, sink)
    bad = kafka_record(malformed_command("s-1"), 12)
    error = DecodeError(DecodeFailure.MALFORMED_JSON, "Expecting ','")
    letters = [
        build_dead_letter(bad, error, attempts=1, consumer_group=group, source_service="audit")
        for group in ("audit-a", "audit-b")
    ]
    assert letters[0].id != letters[1].id
    for offset, letter in enumerate(letters):
        await handle(kafka_record(Fact(TopicName.DEAD_LETTERS, letter, "audit"), offset))
    (record,) = sink.records()
    assert len(log.entries) == 1
    assert record.fact_id == letters[0].id
    assert record.outcome is AuditOutcome.DEAD_LETTERED
    assert record.detail["dead_lettered_by"] == "audit"


class RefusingLog(FakeLog):
    """A log whose every insert fails with a write error that is no outage (a validator, a
    collection the server will not write to): MongoAuditLog raises ValueError for it."""

    async def record(self, entry: AuditEntry) -> StoredEntry:
        raise ValueError("audit log refused the record: attempt to insert in system namespace")

    def note_published(self, record_id: str) -> None:
        pass  # nothing stored to mark


async def test_a_dead_letter_the_log_refuses_is_published_not_dead_lettered_again() -> None:
    # Raising would dead-letter the dead letter, which audit reads and fails on again: with
    # such a log, 1,205 dead letters in 25 s on the real stack, without end.
    sink = FakeSink()
    letter = dead_letter_for(
        malformed_command("s-1"),
        origin_topic="unit.commands",
        partition=0,
        offset=1,
        consumer_group="sc",
    )
    await handler_with(RefusingLog(), sink)(kafka_record(letter, 0))
    (record,) = sink.records()
    assert record.outcome is AuditOutcome.DEAD_LETTERED
    assert record.id == record_id(TopicName.DEAD_LETTERS, letter.message.id)


async def test_a_fact_the_log_refuses_is_left_to_the_runtime_to_dead_letter() -> None:
    with pytest.raises(ValueError, match="refused"):
        await handler_with(RefusingLog(), FakeSink())(kafka_record(conversation("s-1")[0], 0))
