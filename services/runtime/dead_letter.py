"""Turns a record that could not be handled into a `contracts.DeadLetter`, whole and replayable.

The dead letter keeps the origin (topic, partition, offset), the error and the original key,
value and headers (base64), so an operator can inspect and re-publish it byte for byte.
"""

import base64

from contracts.base import derive_id, is_valid_id
from contracts.codec import DecodeError, EncodeError, encode
from contracts.dead_letters import DeadLetter, DeadLetterReason, OriginalHeader
from services.runtime.errors import RetryableError
from services.runtime.publishing import Publish
from services.runtime.record import Record

UNKNOWN_SESSION = "unknown"
_MAX_ERROR_MESSAGE = 4_000
_MAX_ERROR_CLASS = 200
_MAX_HEADER_NAME = 256



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
    session = record.session_id
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
        error_message=str(error)[:_MAX_ERROR_MESSAGE],
        original_key_b64=_b64(record.key),
        original_value_b64=_b64(record.value),
        original_headers=[
            OriginalHeader(name=name[:_MAX_HEADER_NAME], value_b64=_b64(value) or "")
            for name, value in record.headers
        ],
        attempts=max(1, attempts),
    )


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
        traceparent = record.header_text("traceparent")
        try:
            encoded = encode(letter, source=self._source, traceparent=traceparent)
        except EncodeError:
            # An oversize original must not block its partition forever: keep the origin
            # (offset) so it can still be found, drop the bytes.
            letter = letter.model_copy(
                update={
                    "original_value_b64": None,
                    "error_message": (
                        letter.error_message + " [original value omitted: too large]"
                    )[-_MAX_ERROR_MESSAGE:],
                }
            )
            encoded = encode(letter, source=self._source, traceparent=traceparent)
        await self._publish(self._topic, encoded)
