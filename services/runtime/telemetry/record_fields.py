"""The log fields of a record: what every line written about it carries, whoever writes it
(the handler inside its record's log context, the key-ordered consumer's retry and
dead-letter lines after the handler raised)."""

from typing import Any, Final

from services.runtime.record import Record
from services.runtime.telemetry.tracing import valid_traceparent

TURN_ID_HEADERS: Final = ("turn_id", "ce_turnid")


def record_log_fields(record: Record) -> dict[str, Any]:
    """`session_id` (the key), `turn_id` (from the headers), `trace_id` (of the record's
    `traceparent`), `topic`, `partition`, `offset`; the unknown ones left out. Inside the
    record's span its own ids win (the same trace); the retry and dead-letter lines, written
    after the span ended, have only this one to join the record's trace by."""
    own = {
        "session_id": record.session_id,
        "turn_id": _turn_id(record),
        "trace_id": _trace_id(record),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    return {k: v for k, v in own.items() if v is not None}


def _turn_id(record: Record) -> str | None:
    return next((t for t in (record.header_text(h) for h in TURN_ID_HEADERS) if t), None)


def _trace_id(record: Record) -> str | None:
    traceparent = valid_traceparent(record.header_text("traceparent"))
    trace_id = None if traceparent is None else traceparent.split("-")[1]
    return None if trace_id is None or trace_id == "0" * 32 else trace_id
