"""FastStream's Kafka parser, made to let every record through to the runtime.

FastStream decodes every header value as strict UTF-8 (`faststream/kafka/parser.py`) before
any decoder runs. One non-UTF-8 byte (or a null header value) raised there: the record never
reached the runtime, was never tracked, and the commit moved past it — it vanished, with no
dead letter. The runtime does not need FastStream's reading of the record at all: the handler
gets the untouched aiokafka record (`Record.from_consumer_record`). So for such a record this
parser lets FastStream parse a copy whose header values are made readable (invalid bytes
replaced) and puts the original back as `raw_message`: the handler's codec then sees the
original bytes and refuses them (`invalid_field`), and the dead letter keeps them.
"""

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.message import StreamMessage

DefaultParser = Callable[[Any], Awaitable[StreamMessage[Any]]]


async def parse_keeping_original(message: Any, default: DefaultParser) -> StreamMessage[Any]:
    """FastStream's own parse of `message`; for headers it cannot read, a parse of a readable
    copy that still carries the original record."""
    try:
        return await default(message)
    except (UnicodeDecodeError, AttributeError):  # AttributeError: a null header value
        parsed = await default(dataclasses.replace(message, headers=_readable(message.headers)))
        parsed.raw_message = message
        return parsed


def _readable(headers: Any) -> list[tuple[str, bytes]]:
    return [
        (name, (value or b"").decode("utf-8", errors="replace").encode("utf-8"))
        for name, value in headers
    ]
