"""Turns a record that could not be handled into a `contracts.DeadLetter`, whole and replayable.

The dead letter keeps the origin (topic, partition, offset), the error and the original key,
value and headers (base64), so an operator can inspect and re-publish it byte for byte —
unless the original is too large to fit, then it is cut down and says so (`fit_to_limit`).
"""

import base64
from collections.abc import Callable

from contracts.base import derive_id, is_valid_id
from contracts.codec import DecodeError, EncodedRecord, EncodeError, encode
from contracts.dead_letters import DeadLetter, DeadLetterReason, OriginalHeader
from contracts.limits import MAX_DEAD_LETTER_HEADER_BYTES, MAX_DEAD_LETTER_HEADER_NAME
from services.runtime.errors import RetryableError
from services.runtime.publishing import Publish
from services.runtime.record import Record
from services.runtime.telemetry.tracing import valid_traceparent

UNKNOWN_SESSION = "unknown"
_MAX_ERROR_MESSAGE = 4_000
_MAX_ERROR_CLASS = 200


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def reason_for(error: BaseException) -> DeadLetterReason:
    if isinstance(error, DecodeError):
        return DeadLetterReason(error.reason.value)
    if isinstance(error, RetryableError):
        return DeadLetterReason.RETRIES_EXHAUSTED
    return DeadLetterReason.HANDLER_ERROR


def build_dead_letter(
    record: Record,
    error: BaseException,
    *,
    attempts: int,
    consumer_group: str,
    source_service: str,
) -> DeadLetter:
    """The whole dead letter; `fit_to_limit` cuts it down if it is too large to publish."""
    session = record.session_id
    names_cut = any(len(name) > MAX_DEAD_LETTER_HEADER_NAME for name, _ in record.headers)
    names_replaced = any(
        _kept_name(name) != name[:MAX_DEAD_LETTER_HEADER_NAME] for name, _ in record.headers
    )
    notes = [
        note
        for note, applies in (
            ("header names cut", names_cut),
            ("header names not UTF-8: bytes replaced by U+FFFD", names_replaced),
        )
        if applies
    ]
    return DeadLetter(
        # Deterministic: a redelivered poison record yields the same dead-letter id (dedup).
        id=derive_id("dead-letter", consumer_group, record.topic, record.partition, record.offset),
        session_id=session if session is not None and is_valid_id(session) else UNKNOWN_SESSION,
        origin_topic=record.topic,
        origin_partition=record.partition,
        origin_offset=record.offset,
        consumer_group=consumer_group,
        source_service=source_service,
        reason=reason_for(error),
        error_class=type(error).__qualname__[:_MAX_ERROR_CLASS],
        error_message=_noted(str(error), "; ".join(notes) or None),
        original_key_b64=_b64(record.key),
        original_value_b64=_b64(record.value),
        original_headers=[_header(name, value, cut=False) for name, value in record.headers],
        original_truncated=bool(notes),
        attempts=max(1, attempts),
    )


def fit_to_limit(
    letter: DeadLetter, record: Record, encode_letter: Callable[[DeadLetter], EncodedRecord]
) -> EncodedRecord:
    """Encode the dead letter, cutting the original down until it fits in MAX_MESSAGE_BYTES.

    A poison record must never block its partition, so its dead letter must always be
    publishable: first the oversized header values are cut to MAX_DEAD_LETTER_HEADER_BYTES,
    then the value is omitted, last key and headers are dropped (what is left is bounded by the
    contract). Each cut is marked (`original_truncated`, `truncated_from_bytes`) and named in
    `error_message`; the origin (topic, partition, offset) always stays, so the record can be
    read from the topic while it is retained.
    """
    for cut in (_whole, _cut_large_headers, _omit_value, _drop_key_and_headers):
        letter = cut(letter, record)
        try:
            return encode_letter(letter)
        except EncodeError:
            continue
    raise AssertionError("a dead letter without key, value and headers always fits")


def _kept_name(name: str) -> str:
    """The header name as a dead letter can carry it: cut to the contract's length, and a name
    whose bytes were not UTF-8 (surrogate escapes, services/runtime/header_names.py) with those
    bytes replaced: JSON cannot carry a lone surrogate, the dead letter would not encode."""
    kept = name[:MAX_DEAD_LETTER_HEADER_NAME]
    if kept.isascii():
        return kept
    return kept.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header(name: str, value: bytes, *, cut: bool) -> OriginalHeader:
    if not cut or len(value) <= MAX_DEAD_LETTER_HEADER_BYTES:
        return OriginalHeader(name=_kept_name(name), value_b64=_b64(value) or "")
    return OriginalHeader(
        name=_kept_name(name),
        value_b64=_b64(value[:MAX_DEAD_LETTER_HEADER_BYTES]) or "",
        truncated_from_bytes=len(value),
    )


def _whole(letter: DeadLetter, record: Record) -> DeadLetter:
    return letter


def _cut_large_headers(letter: DeadLetter, record: Record) -> DeadLetter:
    cut = [
        (name, value) for name, value in record.headers if len(value) > MAX_DEAD_LETTER_HEADER_BYTES
    ]
    if not cut:
        return letter
    return _marked(
        letter,
        f"{len(cut)} header value(s) cut to {MAX_DEAD_LETTER_HEADER_BYTES} bytes",
        original_headers=[_header(name, value, cut=True) for name, value in record.headers],
    )


def _omit_value(letter: DeadLetter, record: Record) -> DeadLetter:
    if record.value is None:
        return letter
    return _marked(letter, "original value omitted: too large", original_value_b64=None)


def _drop_key_and_headers(letter: DeadLetter, record: Record) -> DeadLetter:
    return _marked(
        letter,
        f"original key and {len(record.headers)} header(s) dropped: too large",
        original_key_b64=None,
        original_headers=[],
    )


def _marked(letter: DeadLetter, note: str, **update: object) -> DeadLetter:
    return letter.model_copy(
        update={
            **update,
            "original_truncated": True,
            "error_message": _noted(letter.error_message, note),
        }
    )


def _noted(message: str, note: str | None) -> str:
    """The error message with the note at its end, both within the contract's bound."""
    if note is None:
        return message[:_MAX_ERROR_MESSAGE]
    suffix = f" [{note}]"
    return message[: _MAX_ERROR_MESSAGE - len(suffix)] + suffix


class DeadLetterPublisher:
    """The `DeadLetterSink` of one consumer: build, encode, publish and wait for the ack."""

    def __init__(
        self, *, topic: str, consumer_group: str, source_service: str, publish: Publish
    ) -> None:
        self._topic = topic
        self._group = consumer_group
        self._source = source_service
        self._publish = publish

    async def __call__(self, record: Record, error: BaseException, attempts: int) -> None:
        letter = build_dead_letter(
            record,
            error,
            attempts=attempts,
            consumer_group=self._group,
            source_service=self._source,
        )
        # The original's traceparent only when it is one: a poison header of any size must
        # not travel on into the dead letter's own headers.
        traceparent = valid_traceparent(record.header_text("traceparent"))

        def encode_letter(candidate: DeadLetter) -> EncodedRecord:
            return encode(candidate, source=self._source, traceparent=traceparent)

        await self._publish(self._topic, fit_to_limit(letter, record, encode_letter))
