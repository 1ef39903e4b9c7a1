"""Build the immutable audit record of one fact: ids, who/what/when, redacted content.

Pure, apart from the clock passed in. The record id is derived from the source topic and the
source fact's id, so the same fact read again (redelivery, replay from offset 0, a second
consumer group) gets the same id; `AuditLog` keeps the first record made under that id.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Final

from contracts.audit import AuditRecord, RedactionMode
from contracts.base import INT64_MAX, INT64_MIN, derive_id
from contracts.codec import EncodedRecord, EncodeError, encode
from contracts.topics import Service, TopicName
from services.audit.fact_view import DetailValue, FactView
from services.audit.redaction import RedactionPolicy
from services.runtime.actors import is_api_key_actor
from services.runtime.secret_scrubbing import scrub_text

MAX_DETAIL_TEXT: Final = 1_000
MAX_SHORT_TEXT: Final = 200
UNKNOWN_SESSION: Final = "unknown"

_TRACEPARENT: Final = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_NO_TRACE: Final = "0" * 32


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the fact was read: lets a pipeline find the source record."""

    topic: TopicName
    topic_name: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class FactIdentity:
    """What the envelope and the body say about the fact itself."""

    fact_id: str
    fact_type: str
    fact_time: datetime
    session_id: str
    source_service: str
    correlation_id: str | None = None
    traceparent: str | None = None
    dedup_key: str | None = None
    """What the record id is derived from when not the fact id (see `own_dead_letter_key`)."""


@dataclass(frozen=True)
class AuditEntry:
    """An audit record with the CloudEvent extensions it is published with."""

    record: AuditRecord
    correlation_id: str | None
    traceparent: str | None

    def encode(self) -> EncodedRecord:
        return self._encoded

    @cached_property
    def _encoded(self) -> EncodedRecord:
        # Once per entry: build_entry encodes it to check its size, the handler publishes it.
        return encode(
            self.record,
            source=Service.AUDIT.value,
            correlation_id=self.correlation_id,
            causation_id=self.record.fact_id,
            traceparent=self.traceparent,
            structured=True,
        )


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """What the audit log holds under a record id, and whether the audit topic has it."""

    entry: AuditEntry
    published: bool


def record_id(topic: TopicName, fact_id: str) -> str:
    return derive_id("audit", topic.value, fact_id)


def own_dead_letter_key(origin_topic: str, origin_partition: int, origin_offset: int) -> str:
    """Dedup key of a dead letter that audit itself caused (it could not decode a source record).

    Every audit consumer group that reads the bad record dead-letters it anew, under an id
    that includes the group (the runtime's rule). Keyed by the bad record instead, a replay
    of the sources in a new audit group finds the trail's existing record: no new record ids.
    """
    return f"audit-dead-letter:{origin_topic}:{origin_partition}:{origin_offset}"


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent; None when absent or malformed."""
    if traceparent is None:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None or match.group(1) == _NO_TRACE:
        return None
    return match.group(1)


def build_entry(
    fact: FactIdentity,
    view: FactView,
    origin: Origin,
    policy: RedactionPolicy,
    recorded_at: datetime,
    span_traceparent: str | None = None,
) -> AuditEntry:
    """The entry for one fact, redacted by `policy`; if the result would be too large to
    publish (full content of a near-limit source record), content falls back to hashes.

    `span_traceparent` (the audit handler's own span, a child of the fact's) is what the
    audit CloudEvent carries, so the trace runs from the upstream command to the audit record;
    the record's `trace_id` is the fact's, or the span's when the fact carried none.
    """
    entry = _entry(fact, view, origin, policy, recorded_at, span_traceparent)
    if _fits(entry):
        return entry
    hashed = replace(policy, mode=RedactionMode.HASHED)
    downgraded = replace(view, detail={**view.detail, "redaction_downgraded": True})
    entry = _entry(fact, downgraded, origin, hashed, recorded_at, span_traceparent)
    kept = len(view.parts)
    while not _fits(entry) and kept > 0:
        # Only thousands of parts outgrow the limit even hashed (an LLM request whose
        # messages all carry the most tool calls): the first parts are kept, the rest counted.
        kept //= 2
        cut = replace(
            downgraded,
            parts=view.parts[:kept],
            detail={**downgraded.detail, "content_parts_omitted": len(view.parts) - kept},
        )
        entry = _entry(fact, cut, origin, hashed, recorded_at, span_traceparent)
    return entry


def _fits(entry: AuditEntry) -> bool:
    try:
        entry.encode()
    except EncodeError:
        return False
    return True


def _entry(
    fact: FactIdentity,
    view: FactView,
    origin: Origin,
    policy: RedactionPolicy,
    recorded_at: datetime,
    span_traceparent: str | None,
) -> AuditEntry:
    source_trace, span_trace = trace_id_of(fact.traceparent), trace_id_of(span_traceparent)
    source = fact.traceparent if source_trace else None
    span = span_traceparent if span_trace else None
    record = AuditRecord(
        id=record_id(origin.topic, fact.dedup_key or fact.fact_id),
        session_id=fact.session_id,
        occurred_at=recorded_at,
        tenant_id=view.tenant_id,
        source_service=_short(fact.source_service),
        fact_type=_short(fact.fact_type),
        fact_id=_short(fact.fact_id),
        fact_time=fact.fact_time,
        turn_id=view.turn_id,
        invocation_id=view.invocation_id,
        outcome=view.outcome,
        trace_id=source_trace or span_trace,
        origin_topic=origin.topic_name,
        origin_partition=origin.partition,
        origin_offset=origin.offset,
        content=None if view.content is None else policy.redact(view.content),
        content_parts=[policy.part(p.name, p.text, p.label) for p in view.parts],
        detail={name: _safe_detail(name, value) for name, value in view.detail.items()},
    )
    return AuditEntry(record=record, correlation_id=fact.correlation_id, traceparent=span or source)


def _short(text: str) -> str:
    return _scrubbed(text)[:MAX_SHORT_TEXT]


def _safe_detail(name: str, value: DetailValue) -> DetailValue:
    # Reasons and error messages are free text (a provider error can quote the API key).
    if isinstance(value, str):
        if name == "requested_by" and is_api_key_actor(value):
            return value  # the gateway's id of a key (a hash prefix), which looks like "api-key: …"
        return _scrubbed(value)[:MAX_DETAIL_TEXT]
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        # The contracts leave counts unbounded (token usage, a dead letter's offset or
        # attempts), but the audit log cannot store such an integer: it keeps the digits.
        return str(value)
    return value


def _scrubbed(text: str) -> str:
    return _scrubbed_short(text) if len(text) <= MAX_SHORT_TEXT else scrub_text(text)


@lru_cache(maxsize=4_096)
def _scrubbed_short(text: str) -> str:
    # Types, services, agents, models and reasons repeat in every record: scrubbed once each.
    return scrub_text(text)


class RecordClock:
    """Record time, strictly increasing within the process.

    The audit log orders a session's records by record time; one session's facts are handled
    one after another, so a strictly increasing clock keeps the log in source order even when
    two records fall into the same microsecond.
    """

    def __init__(self) -> None:
        self._last: datetime | None = None

    def now(self) -> datetime:
        current = datetime.now(UTC)
        if self._last is not None and current <= self._last:
            current = self._last + timedelta(microseconds=1)
        self._last = current
        return current
