"""The audit topic as a sink: publish one encoded audit record and wait for the broker's ack."""

from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

from contracts.codec import EncodedRecord
from services.runtime.errors import RetryableError

Publish = Callable[[str, EncodedRecord], Awaitable[None]]


class AuditTopic:
    """`publish` is `ServiceRuntime.publish` (acks=all, idempotent producer) in the service."""

    def __init__(self, topic: str, publish: Publish) -> None:
        self.topic = topic
        self._publish = publish

    async def publish(self, record: EncodedRecord) -> None:
        try:
            await self._publish(self.topic, record)
        except KafkaError as exc:
            # Broker unavailable or request timed out: retry this session's record later.
            raise RetryableError(f"audit topic {self.topic}: {exc!r}") from exc
