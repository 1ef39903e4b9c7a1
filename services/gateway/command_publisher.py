"""Commands out to the `commands` topic: the codec's CloudEvents headers, acks=all.

The producer starts lazily and again after a failure, so a gateway started while the broker
is down comes up (not ready) and serves once it is back. A send not acknowledged within
`timeout_s` raises `BrokerUnavailable`; the record may still reach the broker later, which is
why clients retry with the same Idempotency-Key (the command id makes the retry harmless).
"""

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.codec import encode
from contracts.commands import Command
from services.gateway.shutdown import stop_within
from services.runtime.command_signing import sign
from services.runtime.telemetry.tracing import current_baggage


class BrokerUnavailable(Exception):
    pass


class CommandPublisher:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        timeout_s: float,
        client_options: Mapping[str, Any] | None = None,
        source: str = "gateway",
        signing_key: bytes | None = None,
    ) -> None:
        self._source = source
        self._signing_key = signing_key
        self._bootstrap_servers = bootstrap_servers
        self._client_options = dict(client_options or {})  # Kafka security (kafka_security.py)
        self._topic = topic
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def reachable(self) -> bool:
        """The broker answers a metadata request now. A started producer stays started through
        an outage, so `connected` alone would call an unreachable broker ready."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await producer.client.fetch_all_metadata()
        except KafkaError:
            return False
        return True

    async def start(self) -> None:
        """Try once; on failure stay unconnected (the next publish tries again)."""
        with contextlib.suppress(BrokerUnavailable):
            await self._ensure_producer()

    async def stop(self) -> None:
        if self._producer is not None:
            await stop_within(self._producer.stop(), self._timeout_s, "command producer")
            self._producer = None

    async def publish(
        self,
        command: Command,
        *,
        correlation_id: str | None,
        traceparent: str | None,
        tracestate: str | None = None,
    ) -> None:
        record = encode(
            command,
            source=self._source,
            correlation_id=correlation_id,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        sign(record, self._signing_key)
        headers = list(record.headers)
        baggage = current_baggage()  # the caller's W3C `baggage` header, carried on with its trace
        if baggage is not None:
            headers.append(("baggage", baggage.encode()))
        producer = await self._ensure_producer()
        try:
            async with asyncio.timeout(self._timeout_s):  # unlike wait_for, no task per send
                await producer.send_and_wait(
                    self._topic, record.value, key=record.key, headers=headers
                )
        except (KafkaError, OSError, TimeoutError) as error:
            raise BrokerUnavailable(f"{self._bootstrap_servers}: {error!r}") from None

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap_servers,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=int(self._timeout_s * 1000),
                    **{"client_id": "agent-runtime-gateway", **self._client_options},
                )
                starting = asyncio.ensure_future(producer.start())
                done, _ = await asyncio.wait({starting}, timeout=self._timeout_s)
                error = (
                    starting.exception()
                    if done and not starting.cancelled()
                    else TimeoutError("no answer")
                )
                if error is not None:
                    starting.cancel()
                    await stop_within(producer.stop(), self._timeout_s, "command producer")
                    raise BrokerUnavailable(f"{self._bootstrap_servers}: {error!r}")
                self._producer = producer
            return self._producer
