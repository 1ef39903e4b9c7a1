"""The audit topic as a sink: publish one encoded audit record and wait for the broker's ack."""

from contracts.codec import EncodedRecord
from services.runtime.publishing import Publish


class AuditTopic:
    """`publish` is `ServiceRuntime.publish` (acks=all, idempotent producer) in the service,
    which raises `RetryableError` while the broker is unavailable."""

    def __init__(self, topic: str, publish: Publish) -> None:
        self.topic = topic
        self._publish = publish

    async def publish(self, record: EncodedRecord) -> None:
        await self._publish(self.topic, record)
