"""The service's Kafka producer: encoded records go to aiokafka as they are.

acks=all and idempotent, so a record is durable once its ack is in, and one partition's
records keep their order even with several produce requests in flight. Not FastStream's
`broker.publish`: its publish path (a publish command, middlewares, header values turned into
text and back into bytes) costs 30-40 µs of CPU per record on top of aiokafka's own
(benchmarks/publish_path.py), and a turn publishes about twenty records. FastStream remains
the consumer side (subscribers, AsyncAPI, lifecycle).
"""

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any

from aiokafka import AIOKafkaProducer

from services.runtime.errors import RetryableError
from services.runtime.kafka_access import unauthorized_topics
from services.runtime.kafka_security import kafka_client_options
from services.runtime.partitioning import SessionPartitioner
from services.runtime.settings import RuntimeSettings

Headers = list[tuple[str, bytes]]


class ProducerNotStarted(RetryableError):
    """A publish before `start` or after `stop`. Retryable: the record is not at fault, and a
    handler that outlives shutdown must leave its record uncommitted, not dead-lettered."""


class RecordProducer:
    def __init__(self, settings: RuntimeSettings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    @property
    def client_id(self) -> str:
        return self._client_id

    async def start(self) -> None:
        """Connect (idempotent). Made here, not in `__init__`: aiokafka binds the running loop."""
        if self._producer is not None:
            return
        s = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            # The broker's logs, metrics and quotas name the service by it (as its consumers).
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=s.producer_linger_ms,
            max_batch_size=s.producer_max_batch_bytes,
            request_timeout_ms=s.kafka_request_timeout_ms,
            partitioner=SessionPartitioner(),
            **kafka_client_options(s),
        )
        try:
            await producer.start()
        except BaseException:
            # Closed here: an unreachable broker at start would otherwise add asyncio's
            # "Unclosed AIOKafkaProducer" error line after the service's one CRITICAL line.
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def missing_topics(self, names: Collection[str]) -> list[str]:
        """The topics among `names` the broker's metadata does not hold (after `start`)."""
        if self._producer is None:
            raise ProducerNotStarted("topic metadata asked before the producer started")
        metadata = await self._producer.client.fetch_all_metadata()
        return sorted(set(names) - metadata.topics())

    async def unauthorized_topics(self, names: Collection[str]) -> list[str]:
        """Those of `names` the broker's ACLs keep from this principal (after `start`). Kafka
        leaves them out of the whole cluster's metadata, as it does a missing topic; asked for
        by name, it says which are refused."""
        if self._producer is None:
            raise ProducerNotStarted("topic metadata asked before the producer started")
        return await unauthorized_topics(self._producer.client, names)

    async def stop(self) -> None:
        """Send what is pending, then disconnect (idempotent)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Headers
    ) -> "asyncio.Future[Any]":
        """Hand the record to the producer; the returned future resolves on the broker's ack."""
        if self._producer is None:
            raise ProducerNotStarted(f"publish to {topic} before the producer started")
        ack: asyncio.Future[Any] = await self._producer.send(topic, value, key=key, headers=headers)
        return ack
