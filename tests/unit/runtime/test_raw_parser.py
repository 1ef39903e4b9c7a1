"""The runtime's parser in front of FastStream's: every record reaches the runtime with its
original header bytes (issue 16: FastStream's own parser raised on a non-UTF-8 value)."""

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaParser

from services.runtime.raw_parser import parse_keeping_original
from services.runtime.record import Record

pytestmark = pytest.mark.unit


def consumer_record(headers: list[tuple[str, bytes | None]]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=5,
        timestamp=0,
        timestamp_type=0,
        key=b"s-1",
        value=b"{}",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=2,
        headers=headers,
    )


async def test_faststreams_parser_alone_refuses_a_non_utf8_header_value() -> None:
    faststream = AioKafkaParser(KafkaMessage, None)
    with pytest.raises(UnicodeDecodeError):
        await faststream.parse_message(consumer_record([("ce_source", b"b\xe4d")]))


@pytest.mark.parametrize("value", [b"b\xe4d", None])
async def test_the_original_record_reaches_the_runtime_whatever_its_header_bytes(
    value: bytes | None,
) -> None:
    raw = consumer_record([("ce_source", value), ("ce_id", b"c-1")])
    parsed = await parse_keeping_original(raw, AioKafkaParser(KafkaMessage, None).parse_message)
    assert parsed.raw_message is raw
    assert Record.from_consumer_record(parsed.raw_message).headers == (
        ("ce_source", value or b""),
        ("ce_id", b"c-1"),
    )
    assert parsed.headers["ce_id"] == "c-1"  # FastStream's own view stays readable


async def test_a_readable_record_is_faststreams_parse_untouched() -> None:
    raw = consumer_record([("ce_id", b"c-1")])
    parsed = await parse_keeping_original(raw, AioKafkaParser(KafkaMessage, None).parse_message)
    assert parsed.raw_message is raw
    assert parsed.headers == {"ce_id": "c-1"}
