"""FastStream's Kafka parser, made to let every record through to the runtime.

FastStream decodes every header value as strict UTF-8 (`faststream/kafka/parser.py`) before
any decoder runs. One non-UTF-8 byte (or a null header value) raised there: the record never
reached the runtime, was never tracked, and the commit moved past it — it vanished, with no
dead letter. The runtime does not need FastStream's reading of the record at all: the handler
gets the untouched aiokafka record (`Record.from_consumer_record`). So for such a record this
parser lets FastStream parse copies whose header values are made readable (invalid bytes
replaced) and puts the originals back as `raw_message`: the handler's codec then sees the
original bytes and refuses them (`invalid_field`), and the dead letter keeps them. The runtime
consumes fetched batches (`getmany()`), so one such record must not fail the others of its
batch either.
"""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.message import StreamMessage

DefaultBatchParser = Callable[[tuple[Any, ...]], Awaitable[StreamMessage[Any]]]


async def parse_batch_keeping_original(
    messages: tuple[Any, ...], default: DefaultBatchParser
) -> StreamMessage[Any]:
    """FastStream's parse of a fetched batch; if a record's headers are unreadable, a parse of
    readable copies that still carries the original records."""
    try:
        return await default(messages)
    except (UnicodeDecodeError, AttributeError):
        copies = tuple(dataclasses.replace(m, headers=_readable(m.headers)) for m in messages)
        parsed = await default(copies)
        parsed.raw_message = messages
        return parsed


def _readable(headers: Any) -> list[tuple[str, bytes]]:
    return [
        (name, (value or b"").decode("utf-8", errors="replace").encode("utf-8"))
        for name, value in headers
    ]
