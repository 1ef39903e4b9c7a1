"""Watches session-events and abandons the in-flight invocations whose turn or session is over.

Why a plain consumer without a group: the invocation of a session runs on whichever instance
owns that session's llm-requests partition, and nothing aligns that with a group's assignment
of session-events. So every instance reads every partition, from the end (a fact from before
the start cannot concern an invocation that starts later), commits nothing, and acts only on
sessions it has in flight — decoding nothing else. Its effect, cancelling a local task, is not
durable, so a missed fact costs at worst an answer nobody reads.
Records that do not decode are skipped: the session-events consumers own dead-lettering.
"""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer

from contracts.codec import DecodeError, decode
from contracts.topics import TopicName
from services.llm_invocation.abandonment import abandonment_for
from services.llm_invocation.in_flight import InFlightInvocations
from services.runtime.kafka_security import KafkaSecuritySettings, kafka_client_options

log = logging.getLogger(__name__)


class SessionEventsWatcher:
    def __init__(
        self,
        connection: KafkaSecuritySettings,
        topic: str,
        in_flight: InFlightInvocations,
        *,
        client_id: str = "llm-invocation.session-watch",
    ) -> None:
        self._connection = connection
        self._client_id = client_id
        self._topic = topic
        self._in_flight = in_flight
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._connection.kafka_bootstrap_servers,
            client_id=self._client_id,
            **kafka_client_options(self._connection),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="session-events-watch")

    async def ready(self, within_s: float = 30.0) -> None:
        """Positioned at the end of every partition: facts published from now on are seen."""
        await asyncio.wait_for(self._ready.wait(), within_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        for partition in consumer.assignment():
            await consumer.position(partition)  # resolves "latest" now, not at the first fetch
        self._ready.set()
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except Exception:  # the watcher must outlive broker hiccups
                log.exception("session-events watch: fetch failed")
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._consider(record)

    def _consider(self, record: object) -> None:
        key = getattr(record, "key", None)
        if key is None or not self._in_flight.has_session(key.decode("utf-8", "replace")):
            return  # nothing of this session runs here: do not even decode
        try:
            fact = decode(
                getattr(record, "value", None),
                getattr(record, "headers", None) or (),
                topic=TopicName.SESSION_EVENTS,
            ).message
        except DecodeError:
            return
        rule = abandonment_for(fact)
        if rule is not None:
            self._in_flight.abandon(rule)
