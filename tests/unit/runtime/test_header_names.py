"""aiokafka's record parsing with a header name that is not UTF-8 (services/runtime/header_names.py)."""

import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from services.runtime.header_names import LenientMemoryRecords

pytestmark = pytest.mark.unit

TP = TopicPartition("t", 0)


class _NameBytes(str):
    """A header name whose wire bytes are not UTF-8 (the Python builder calls `.encode`)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"x-\xff"


def _batch() -> bytes:
    builder = _DefaultRecordBatchBuilderPy(2, 0, 0, -1, -1, -1, 1 << 20)
    builder.append(0, timestamp=None, key=b"k", value=b"before", headers=[("a", b"1")])
    builder.append(1, timestamp=None, key=b"k", value=b"poison", headers=[(_NameBytes(), b"2")])
    builder.append(2, timestamp=None, key=b"k", value=b"after", headers=[("c", b"3")])
    return bytes(builder.build())


def _records(data: bytes, records_type: type) -> list[tuple[int, bytes, list[tuple[str, bytes]]]]:
    unpacked = PartitionRecords(TP, records_type(data), None, 0, None, None, True, 0)
    return [(r.offset, r.value, list(r.headers)) for r in unpacked]


def test_aiokafka_alone_fails_on_the_name() -> None:
    with pytest.raises(UnicodeDecodeError):
        _records(_batch(), MemoryRecords)


def test_every_record_comes_once_and_the_name_keeps_its_bytes_as_surrogates() -> None:
    records = _records(_batch(), LenientMemoryRecords)

    assert [(offset, value) for offset, value, _ in records] == [
        (0, b"before"),
        (1, b"poison"),
        (2, b"after"),
    ]
    [(name, value)] = records[1][2]
    assert (name.encode("utf-8", "surrogateescape"), value) == (b"x-\xff", b"2")
    assert records[2][2] == [("c", b"3")]
