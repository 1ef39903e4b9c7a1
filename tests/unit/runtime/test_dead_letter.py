import base64
from dataclasses import replace

import pytest

from contracts.codec import DecodeError, DecodeFailure, EncodedRecord, decode
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.limits import MAX_DEAD_LETTER_HEADER_BYTES, MAX_MESSAGE_BYTES
from services.runtime.dead_letter import DeadLetterPublisher, build_dead_letter
from services.runtime.errors import RetryableError
from services.runtime.record import Record

pytestmark = pytest.mark.unit

RECORD = Record(
    topic="agent-runtime.commands",
    partition=3,
    offset=42,
    key=b"session-1",
    value=b"\x00not json",
    headers=(("ce_type", b"x"), ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")),
)


def test_dead_letter_keeps_origin_error_and_original_bytes() -> None:
    error = DecodeError(DecodeFailure.MALFORMED_JSON, "bad json")
    letter = build_dead_letter(
        RECORD, error, attempts=1, consumer_group="g", source_service="session-commands"
    )
    assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == (
        "agent-runtime.commands",
        3,
        42,
    )
    assert letter.reason is DeadLetterReason.MALFORMED_JSON
    assert letter.error_class == "DecodeError"
    assert base64.b64decode(letter.original_value_b64 or "") == b"\x00not json"
    assert base64.b64decode(letter.original_key_b64 or "") == b"session-1"
    assert [(h.name, base64.b64decode(h.value_b64)) for h in letter.original_headers] == list(
        RECORD.headers
    )
    assert letter.session_id == "session-1"


def test_same_record_gives_the_same_dead_letter_id() -> None:
    one = build_dead_letter(
        RECORD, ValueError("x"), attempts=1, consumer_group="g", source_service="audit"
    )
    two = build_dead_letter(
        RECORD, ValueError("y"), attempts=2, consumer_group="g", source_service="audit"
    )
    assert one.id == two.id


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("boom"), DeadLetterReason.HANDLER_ERROR),
        (RetryableError("still down"), DeadLetterReason.RETRIES_EXHAUSTED),
        (DecodeError(DecodeFailure.UNKNOWN_TYPE, "?"), DeadLetterReason.UNKNOWN_TYPE),
    ],
)
def test_reason_follows_the_error(error: Exception, reason: DeadLetterReason) -> None:
    letter = build_dead_letter(RECORD, error, attempts=1, consumer_group="g", source_service="a")
    assert letter.reason is reason


def test_an_invalid_or_missing_key_becomes_unknown_session() -> None:
    for key in (None, b"not a valid id!"):
        record = Record("t", 0, 0, key, b"")
        letter = build_dead_letter(
            record, ValueError(), attempts=1, consumer_group="g", source_service="a"
        )
        assert letter.session_id == "unknown"


async def test_publisher_encodes_a_decodable_dead_letter_with_the_trace() -> None:
    sent: list[tuple[str, EncodedRecord]] = []

    async def publish(topic: str, record: EncodedRecord) -> None:
        sent.append((topic, record))

    sink = DeadLetterPublisher(
        topic="dl", consumer_group="g", source_service="audit", publish=publish
    )
    await sink(RECORD, ValueError("boom"), 1)
    [(topic, encoded)] = sent
    assert topic == "dl"
    decoded = decode(encoded.value, encoded.headers)
    assert isinstance(decoded.message, DeadLetter)
    assert decoded.envelope.traceparent == RECORD.header_text("traceparent")


async def test_an_oversize_original_is_dropped_rather_than_blocking_the_partition() -> None:
    sent: list[EncodedRecord] = []

    async def publish(topic: str, record: EncodedRecord) -> None:
        sent.append(record)

    sink = DeadLetterPublisher(topic="dl", consumer_group="g", source_service="a", publish=publish)
    huge = Record("t", 0, 7, b"s", b"x" * MAX_MESSAGE_BYTES)
    await sink(huge, ValueError("too big"), 1)
    letter = decode(sent[0].value, sent[0].headers).message
    assert isinstance(letter, DeadLetter)
    assert letter.original_value_b64 is None
    assert letter.origin_offset == 7
    assert letter.original_truncated
    assert "omitted" in letter.error_message


async def published_letter(record: Record) -> DeadLetter:
    sent: list[EncodedRecord] = []

    async def publish(topic: str, encoded: EncodedRecord) -> None:
        sent.append(encoded)

    sink = DeadLetterPublisher(topic="dl", consumer_group="g", source_service="a", publish=publish)
    await sink(record, DecodeError(DecodeFailure.MALFORMED_JSON, "bad"), 1)
    [encoded] = sent
    assert len(encoded.value) <= MAX_MESSAGE_BYTES
    letter = decode(encoded.value, encoded.headers).message
    assert isinstance(letter, DeadLetter)
    return letter


async def test_a_one_megabyte_header_is_cut_and_the_value_kept() -> None:
    big = b"A" * 1_000_000
    record = Record("t", 0, 9, b"s-1", b"{not json", (("x-pad", big), ("ce_type", b"x")))
    letter = await published_letter(record)
    assert letter.original_truncated
    padded, kept = letter.original_headers
    assert padded.truncated_from_bytes == 1_000_000
    assert base64.b64decode(padded.value_b64) == big[:MAX_DEAD_LETTER_HEADER_BYTES]
    assert (kept.truncated_from_bytes, base64.b64decode(kept.value_b64)) == (None, b"x")
    assert base64.b64decode(letter.original_value_b64 or "") == b"{not json"
    assert "header value(s) cut" in letter.error_message


async def test_a_huge_header_as_traceparent_does_not_reach_the_dead_letters_headers() -> None:
    record = Record("t", 0, 9, b"s-1", b"{", (("traceparent", b"0" * 900_000),))
    sent: list[EncodedRecord] = []

    async def publish(topic: str, encoded: EncodedRecord) -> None:
        sent.append(encoded)

    sink = DeadLetterPublisher(topic="dl", consumer_group="g", source_service="a", publish=publish)
    await sink(record, ValueError("bad"), 1)
    assert all(len(value) < 1_000 for _, value in sent[0].headers)


async def test_when_nothing_else_fits_key_and_headers_are_dropped_and_the_origin_kept() -> None:
    many = tuple((f"h{i}", b"v" * 100) for i in range(20_000))
    letter = await published_letter(Record("t", 2, 11, b"s-1", b"x" * 500_000, many))
    assert letter.original_truncated
    assert (letter.original_headers, letter.original_key_b64, letter.original_value_b64) == (
        [],
        None,
        None,
    )
    assert (letter.origin_partition, letter.origin_offset) == (2, 11)
    assert "20000 header(s) dropped" in letter.error_message


def test_a_letter_that_fits_is_not_marked() -> None:
    letter = build_dead_letter(
        RECORD, ValueError("x"), attempts=1, consumer_group="g", source_service="a"
    )
    assert not letter.original_truncated
    assert all(h.truncated_from_bytes is None for h in letter.original_headers)


async def test_a_header_name_that_was_not_utf8_is_kept_readable_and_the_value_whole() -> None:
    # aiokafka hands such a name over with surrogate escapes (services/runtime/header_names.py);
    # JSON cannot carry them: the letter lost its key, headers and value to fit_to_limit.
    record = replace(RECORD, headers=(("x-\udcff", b"v"),))
    with pytest.raises(DecodeError) as refused:
        decode(record.value, record.headers)
    assert refused.value.reason is DecodeFailure.INVALID_FIELD
    published: list[EncodedRecord] = []

    async def publish(topic: str, encoded: EncodedRecord) -> None:
        published.append(encoded)

    sink = DeadLetterPublisher(
        topic="dl", consumer_group="g", source_service="session-commands", publish=publish
    )
    await sink(record, refused.value, 1)

    letter = decode(published[0].value, published[0].headers).message
    assert isinstance(letter, DeadLetter)
    assert [(h.name, h.value_b64) for h in letter.original_headers] == [("x-\ufffd", "dg==")]
    assert base64.b64decode(letter.original_value_b64 or "") == RECORD.value
    assert letter.original_truncated
    assert letter.error_message.endswith("[header names not UTF-8: bytes replaced by U+FFFD]")
