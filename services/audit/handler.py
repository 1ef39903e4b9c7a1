"""One source record in, one audit record out: decode → describe → persist → publish.

The runtime's key-ordered consumer calls `AuditHandler` once per record, one at a time per
session, and commits the offset only after it returns. So a record is done when its entry
is in the audit log AND the audit topic acknowledged it; a crash in between re-runs it, and
the log turns the re-run into a re-publish of the same record (same id, same bytes) or into
nothing once it is marked published.

Failures:
- a source record that does not decode raises `DecodeError`: the runtime dead-letters it, and
  that dead letter comes back here as a `dead_lettered` fact (its record id keyed by the bad
  record, not by the dead letter: records.own_dead_letter_key);
- a record on the dead-letters topic never raises (except RetryableError): whatever is wrong
  with it is audited as it is. Otherwise a dead letter about a dead letter would be audited
  into another dead letter, and so on (docs/audit.md, "No dead-letter loop");
- outages raise `RetryableError` from the adapters: the runtime retries that session's record.
"""

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final, Protocol

from contracts.base import Message, is_valid_id
from contracts.codec import Decoded, EncodedRecord, decode
from contracts.dead_letters import DeadLetter
from contracts.envelope import H_SOURCE
from contracts.topics import Service, TopicCatalogue, TopicName
from services.audit.dead_letter_facts import (
    UNDECODABLE_DEAD_LETTER,
    dead_letter_view,
    undecodable_view,
)
from services.audit.fact_view import FactView
from services.audit.facts import view_of
from services.audit.records import (
    UNKNOWN_SESSION,
    AuditEntry,
    FactIdentity,
    Origin,
    RecordClock,
    StoredEntry,
    build_entry,
    own_dead_letter_key,
)
from services.audit.redaction import RedactionPolicy
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from services.runtime.telemetry.tracing import current_traceparent

log = logging.getLogger(__name__)

AUDITED_TOPICS: Final = (
    TopicName.COMMANDS,
    TopicName.TURNS,
    TopicName.SESSION_EVENTS,
    TopicName.LLM_REQUESTS,
    TopicName.LLM_RESULTS,
    TopicName.DEAD_LETTERS,
)
"""Not llm-stream: LLMCompleted summarises the token deltas of its invocation."""


class EntryStore(Protocol):
    async def record(self, entry: AuditEntry) -> StoredEntry: ...
    def note_published(self, record_id: str) -> None:
        """Written behind: the record is stored and acknowledged already; the mark only
        keeps a replay quiet (published_marks.py)."""


class AuditSink(Protocol):
    """The audit topic; `publish` returns once the broker acknowledged (acks=all)."""

    async def publish(self, record: EncodedRecord) -> None: ...


class FactObserver(Protocol):
    """Derives metrics from facts (fact_metrics.py); called once per fact, in session order."""

    def observe(self, message: Message) -> None: ...


class AuditHandler:
    def __init__(
        self,
        *,
        topics: TopicCatalogue,
        policy: RedactionPolicy,
        log: EntryStore,
        sink: AuditSink,
        clock: RecordClock | None = None,
        span_traceparent: Callable[[], str | None] = current_traceparent,
        observer: FactObserver | None = None,
    ) -> None:
        self._topics = topics
        self._policy = policy
        self._log = log
        self._sink = sink
        self._clock = clock or RecordClock()
        self._span_traceparent = span_traceparent
        self._observer = observer
        self._input_topics = {topics.name(topic): topic for topic in AUDITED_TOPICS}

    async def __call__(self, record: Record) -> None:
        entry, fact = self._entry_and_fact(record)
        stored = await self._stored(record, entry)
        if stored.published:
            return  # a replay: pipelines already have this record, metrics counted it
        await self._sink.publish(stored.entry.encode())
        self._log.note_published(stored.entry.record.id)
        if self._observer is not None and fact is not None:
            self._observer.observe(fact)

    async def _stored(self, record: Record, entry: AuditEntry) -> StoredEntry:
        try:
            return await self._log.record(entry)
        except RetryableError:
            raise
        except Exception:
            if self._input_topics.get(record.topic) is not TopicName.DEAD_LETTERS:
                raise  # the runtime dead-letters the fact; that dead letter comes back here
            # The log refused a dead letter's record (a write error other than a duplicate):
            # raising would dead-letter the dead letter, which audit reads and fails on again,
            # without end. It goes out on the topic unstored instead (same id: a later replay
            # that stores it publishes a duplicate a pipeline drops by id).
            log.exception(
                "audit log refused the record of %s[%d]@%d; published without it",
                record.topic,
                record.partition,
                record.offset,
            )
            return StoredEntry(entry=entry, published=False)

    def entry_for(self, record: Record) -> AuditEntry:
        return self._entry_and_fact(record)[0]

    def _entry_and_fact(self, record: Record) -> tuple[AuditEntry, Message | None]:
        """The audit entry and the decoded fact (None: a dead letter that does not decode)."""
        topic = self._input_topics.get(record.topic) or self._topics.input_topic(
            record.topic, AUDITED_TOPICS
        )  # the lookup raises UnexpectedTopic for a topic that is not audited
        origin = Origin(topic, record.topic, record.partition, record.offset)
        if topic is TopicName.DEAD_LETTERS:
            return self._dead_letter_entry(record, origin)
        decoded = decode(record.value, record.headers, topic=topic)
        return self._build(_identity(decoded), view_of(decoded.message), origin), decoded.message

    def _dead_letter_entry(
        self, record: Record, origin: Origin
    ) -> tuple[AuditEntry, DeadLetter | None]:
        try:
            decoded = decode(record.value, record.headers, topic=TopicName.DEAD_LETTERS)
            letter = decoded.message
            assert isinstance(letter, DeadLetter)
            fact = _identity(decoded)
            if letter.source_service == Service.AUDIT.value:
                key = own_dead_letter_key(
                    letter.origin_topic, letter.origin_partition, letter.origin_offset
                )
                fact = replace(fact, dedup_key=key)
            return self._build(fact, dead_letter_view(letter), origin), letter
        except RetryableError:
            raise
        except Exception as exc:  # anything: a dead letter is never dead-lettered again
            error = f"{type(exc).__name__}: {exc}"
            entry = self._build(
                _undecodable_identity(record), undecodable_view(record.value, error), origin
            )
            return entry, None

    def _build(self, fact: FactIdentity, view: FactView, origin: Origin) -> AuditEntry:
        return build_entry(
            fact, view, origin, self._policy, self._clock.now(), self._span_traceparent()
        )


def _identity(decoded: Decoded) -> FactIdentity:
    message, envelope = decoded.message, decoded.envelope
    return FactIdentity(
        fact_id=message.id,
        fact_type=envelope.type,
        fact_time=message.occurred_at,
        session_id=message.session_id,
        source_service=envelope.source,
        correlation_id=envelope.chain_correlation_id(message.id),
        traceparent=envelope.traceparent,
    )


def _undecodable_identity(record: Record) -> FactIdentity:
    # Partition and offset are the only identity a broken record has; they are stable
    # across replays of the topic.
    key = record.session_id
    fact_time = datetime.now(UTC)  # stands in when a broken record has a broken timestamp
    if record.timestamp_ms is not None:
        with suppress(OverflowError, OSError, ValueError):
            fact_time = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
    fact_id = f"undecodable:{record.partition}:{record.offset}"
    return FactIdentity(
        fact_id=fact_id,
        fact_type=UNDECODABLE_DEAD_LETTER,
        fact_time=fact_time,
        session_id=key if key is not None and is_valid_id(key) else UNKNOWN_SESSION,
        source_service=record.header_text(H_SOURCE) or "unknown",
        # No chain can be read from a broken record: it begins its own, as a fact without a
        # ce_correlationid does, so that every audit event carries correlationid.
        correlation_id=fact_id,
        traceparent=record.header_text("traceparent"),
    )
