"""Replay of what a resuming client missed: one partition of both topics, from its cursor to
the end positions taken when its live stream attached.

A short-lived group-less consumer per resume (bounded by a semaphore): resumes are rare beside
the live fan-out, and reading exactly [cursor, end) of two partitions needs its own positions.
The two topics are merged by record time, each kept in offset order, as the live reader does.
"""

import asyncio
import heapq
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.base import Message
from contracts.codec import DecodeError, decode
from contracts.topics import TopicName
from services.gateway.shutdown import stop_within
from services.gateway.stream_cursor import Cursor, StreamTopic
from services.gateway.stream_sink import StreamItem

log = logging.getLogger(__name__)


class StreamReplay:
    def __init__(
        self,
        bootstrap_servers: str,
        topics: Mapping[StreamTopic, str],
        *,
        client_options: Mapping[str, Any] | None = None,
        concurrency: int = 32,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topics = dict(topics)
        self._client_options = dict(client_options or {})
        self._slots = asyncio.Semaphore(concurrency)

    async def read(self, session_id: str, start: Cursor, end: Cursor) -> list[StreamItem]:
        """The session's records in [start, end) of its partition, in stream order."""
        per_topic: dict[StreamTopic, list[StreamItem]] = {topic: [] for topic in self._topics}
        wanted = {
            topic: (start.next_offset(topic), end.next_offset(topic))
            for topic in self._topics
            if start.next_offset(topic) < end.next_offset(topic)
        }
        if not wanted:
            return []
        async with self._slots:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                # Records deleted by retention while we read: an error, never a silent jump.
                auto_offset_reset="none",
                **self._client_options,
            )
            await consumer.start()
            try:
                partitions = {
                    topic: TopicPartition(self._topics[topic], start.partition) for topic in wanted
                }
                consumer.assign(list(partitions.values()))
                for topic, tp in partitions.items():
                    consumer.seek(tp, wanted[topic][0])
                async for item in self._records(consumer, partitions, wanted):
                    if item.message.session_id == session_id:
                        per_topic[item.topic].append(item)
            finally:
                await stop_within(consumer.stop(), 5.0, "stream replay reader")
        return list(heapq.merge(*per_topic.values(), key=lambda item: item.timestamp_ms))

    async def _records(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Mapping[StreamTopic, TopicPartition],
        wanted: Mapping[StreamTopic, tuple[int, int]],
    ) -> AsyncIterator[StreamItem]:
        by_name = {tp.topic: topic for topic, tp in partitions.items()}
        pending = set(partitions)
        while pending:
            batches = await consumer.getmany(*(partitions[t] for t in pending), timeout_ms=500)
            for tp, records in batches.items():
                topic = by_name[tp.topic]
                for record in records:
                    if record.offset >= wanted[topic][1]:
                        break
                    try:
                        message = decode(
                            record.value, record.headers, topic=TopicName(topic.value)
                        ).message
                    except DecodeError as error:
                        log.warning("stream replay: undecodable record skipped: %s", error)
                        continue
                    if isinstance(message, Message):
                        yield StreamItem(
                            topic, tp.partition, record.offset, record.timestamp, message
                        )
            for topic in list(pending):
                if await consumer.position(partitions[topic]) >= wanted[topic][1]:
                    pending.discard(topic)
