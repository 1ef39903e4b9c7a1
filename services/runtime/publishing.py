"""Publishing: the one `Publish` signature every service and job uses, and the one rule that
classifies a failed publish as transient or permanent.

A broker that is down, has no leader for the partition or times out is an outage: the record
that wanted to publish is retried (`RetryableError`), whichever service it is. Only a record
the broker refuses for what it is (too large, malformed) can never be published:
`UnpublishableRecord`, which the runtime dead-letters. Every other broker error counts as
unavailability, authorization failures included: those are a deployment to fix, and
dead-lettering every record meanwhile would drop the pipeline's input.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Final

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)

from contracts.codec import EncodedRecord
from services.runtime.errors import RetryableError, UnpublishableRecord

Publish = Callable[[str, EncodedRecord], Awaitable[None]]
PublishMany = Callable[[str, Sequence[EncodedRecord]], Awaitable[None]]
"""Publishes in order and returns once every record is acknowledged (`ServiceRuntime.publish_many`)."""
"""Publish one record to a topic (full name) and return once the broker acknowledged it."""

_REFUSED_RECORD: Final = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    UnsupportedForMessageFormatError,
)


@asynccontextmanager
async def publish_failures_classified(topic: str) -> AsyncIterator[None]:
    """Driver errors of one publish to `topic` → `UnpublishableRecord` or `RetryableError`."""
    try:
        yield
    except _REFUSED_RECORD as exc:
        raise UnpublishableRecord(f"{topic} refuses the record: {exc!r}") from exc
    except KafkaError as exc:
        raise RetryableError(f"broker unavailable for {topic}: {exc!r}") from exc
