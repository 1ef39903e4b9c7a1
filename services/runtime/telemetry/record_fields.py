"""The log fields of a record: what every line written about it carries, whoever writes it
(the handler inside its record's log context, the key-ordered consumer's retry and
dead-letter lines after the handler raised)."""

from typing import Any, Final

from services.runtime.record import Record

TURN_ID_HEADERS: Final = ("turn_id", "ce_turnid")


def record_log_fields(record: Record) -> dict[str, Any]:
    """`session_id` (the key), `turn_id` (from the headers), `topic`, `partition`, `offset`;
    the unknown ones left out."""
    own = {
        "session_id": record.session_id,
        "turn_id": _turn_id(record),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    return {k: v for k, v in own.items() if v is not None}


def _turn_id(record: Record) -> str | None:
    return next((t for t in (record.header_text(h) for h in TURN_ID_HEADERS) if t), None)
