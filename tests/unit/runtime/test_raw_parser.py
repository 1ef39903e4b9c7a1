"""The runtime's parser in front of FastStream's: every record of a fetched batch reaches the
runtime with its original header bytes (issue 16: FastStream's own parser raised on a
non-UTF-8 value)."""

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka.message import KafkaMessage
from faststream.kafka.parser import AioKafkaBatchParser, AioKafkaParser

from services.runtime.raw_parser import parse_batch_keeping_original
from services.runtime.record import Record

pytestmark = pytest.mark.unit


def consumer_record(
    headers: list[tuple[str, bytes | None]], offset: int = 5
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=offset,
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


def batch_parser() -> AioKafkaBatchParser:
    return AioKafkaBatchParser(KafkaMessage, None)


@pytest.mark.parametrize("value", [b"b\xe4d", None])
async def test_the_original_records_reach_the_runtime_whatever_their_header_bytes(
    value: bytes | None,
) -> None:
    bad = consumer_record([("ce_source", value), ("ce_id", b"c-1")])
    good = consumer_record([("ce_id", b"c-2")], offset=6)
    parsed = await parse_batch_keeping_original((bad, good), batch_parser().parse_batch)
    assert parsed.raw_message == (bad, good)
    assert parsed.raw_message[0] is bad  # the original record, not the readable copy
    assert [Record.from_consumer_record(r).headers for r in parsed.raw_message] == [
        (("ce_source", value or b""), ("ce_id", b"c-1")),
        (("ce_id", b"c-2"),),
    ]
    assert parsed.headers["ce_id"] == "c-1"  # FastStream's own view stays readable


async def test_a_readable_batch_is_faststreams_parse_untouched() -> None:
    batch = (consumer_record([("ce_id", b"c-1")]),)
    parsed = await parse_batch_keeping_original(batch, batch_parser().parse_batch)
    assert parsed.raw_message is batch
    assert parsed.headers == {"ce_id": "c-1"}
