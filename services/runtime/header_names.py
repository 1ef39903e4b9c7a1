"""aiokafka's record parsing, made to let a record whose header name is not UTF-8 through.

Kafka header names are strings, but the broker does not check their bytes. aiokafka decodes
each name as strict UTF-8 while it unpacks a fetched batch (`DefaultRecordBatch._read_msg`, C
and Python alike), so one record with such a name made every `getmany()` of its consumer raise
`UnicodeDecodeError`: FastStream restarted the consume loop, which fetched the same record and
raised again, for ever — the consumer's partitions all stalled behind one record written by
any producer of `commands` (health still ready), and records of other partitions that the
failing call had already drained were skipped by the fetch position.

`install()` puts a wrapper around aiokafka's batches in the fetcher: batches unpack in aiokafka's
own (C) code, and only one that fails on a header name is unpacked again in aiokafka's Python
code with the names decoded `surrogateescape` (the original bytes survive: `name.encode("utf-8",
"surrogateescape")`). The record then reaches the handler, whose codec refuses the name
(`invalid_field`), and its dead letter carries on the partition like any other poison record.
"""

from collections.abc import Iterator
from typing import Any, SupportsIndex

import aiokafka.consumer.fetcher as _fetcher
from aiokafka.record.default_records import DefaultRecordBatch, _DefaultRecordBatchPy
from aiokafka.record.memory_records import _MemoryRecordsPy

_installed = False


def install() -> None:
    """Make every aiokafka consumer of this process parse batches with `LenientMemoryRecords`
    (idempotent)."""
    global _installed
    if not _installed:
        _fetcher.MemoryRecords = LenientMemoryRecords
        _installed = True


class _SurrogateEscapingBytes(bytearray):
    """A batch buffer whose slices decode non-UTF-8 bytes as surrogates instead of raising:
    aiokafka's Python parser decodes header names with `buffer[a:b].decode("utf-8")`."""

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        item = super().__getitem__(index)
        return _SurrogateEscapingBytes(item) if isinstance(index, slice) else item

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return super().decode(encoding, "surrogateescape")


class _LenientBatch:
    """One v2 record batch: aiokafka's own batch, but unpacked again leniently if a header
    name fails to decode."""

    __slots__ = ("_batch", "_raw")

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch = batch
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._batch
        except UnicodeDecodeError:
            # From the batch's first record again: aiokafka skips the records below its
            # position (`PartitionRecords._unpack_records`), those already handed out.
            yield from self._lenient()

    def __next__(self) -> Any:
        # aiokafka reads a control batch's marker with next(batch): no header names there.
        return next(self._batch)

    def _lenient(self) -> Iterator[Any]:
        batch = _DefaultRecordBatchPy(self._raw)
        batch._maybe_uncompress()
        batch._buffer = _SurrogateEscapingBytes(batch._buffer)
        return iter(batch)


class LenientMemoryRecords:
    """The records of one fetched partition (`aiokafka.record.MemoryRecords`), batch by batch;
    v2 batches wrapped in `_LenientBatch`, older formats (no headers) as aiokafka makes them."""

    __slots__ = ("_records",)

    def __init__(self, data: bytes) -> None:
        self._records: Any = _MemoryRecordsPy(data)

    def size_in_bytes(self) -> int:
        size: int = self._records.size_in_bytes()
        return size

    def has_next(self) -> bool:
        more: bool = self._records.has_next()
        return more

    def next_batch(self) -> Any:
        raw = self._records._next_slice  # the batch's bytes, for a lenient second reading
        batch = self._records.next_batch()
        if raw is None or not isinstance(batch, DefaultRecordBatch):
            return batch
        return _LenientBatch(batch, raw)
