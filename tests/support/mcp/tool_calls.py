"""Talking to tool-invocation over Kafka as session-commands would: ToolCallRequested (and
turn facts) published on `session-events`, RecordToolResult read back from `turns`."""

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.agents import AgentType
from contracts.base import Message, utc_now
from contracts.codec import DecodeError, decode, encode
from contracts.session_events import ToolCallRequested
from contracts.topics import Service, TopicCatalogue, TopicName
from contracts.turns import RecordToolResult


def tool_call(
    session_id: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    runs_on: str = "mcp:demo",
    idempotent: bool = False,
    tenant_id: str = "tenant-tools",
    turn_id: str | None = None,
    tool_call_id: str | None = None,
    deadline_s: float = 120.0,
) -> ToolCallRequested:
    call_id = tool_call_id or f"call_{uuid.uuid4().hex}"
    return ToolCallRequested(
        id=f"event-{call_id}",
        session_id=session_id,
        tenant_id=tenant_id,
        turn_id=turn_id or f"turn-{session_id}",
        tool_call_id=call_id,
        tool=tool,
        step=0,
        agent=AgentType.CODER,
        arguments=arguments,
        runs_on=runs_on,
        idempotent=idempotent,
        deadline=utc_now() + timedelta(seconds=deadline_s),
    )


class ToolTraffic:
    """A producer on session-events and a reader of turns, on one test's topics."""

    def __init__(self, bootstrap_servers: str, catalogue: TopicCatalogue) -> None:
        self._bootstrap = bootstrap_servers
        self._events = catalogue.name(TopicName.SESSION_EVENTS)
        self._turns = catalogue.name(TopicName.TURNS)
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
        self._consumer = AIOKafkaConsumer(
            self._turns,
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.results: list[RecordToolResult] = []

    async def __aenter__(self) -> "ToolTraffic":
        await self._producer.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._producer.stop()

    async def publish(self, fact: Message) -> None:
        record = encode(fact, source=Service.SESSION_COMMANDS.value)
        await self._producer.send_and_wait(
            self._events, record.value, key=record.key, headers=record.headers
        )

    async def result_of(self, tool_call_id: str, within_s: float = 60.0) -> RecordToolResult:
        """The first RecordToolResult for the call; TimeoutError if none within `within_s`."""
        give_up = time.monotonic() + within_s
        while True:
            for result in self.results:
                if result.tool_call_id == tool_call_id:
                    return result
            if time.monotonic() > give_up:
                raise TimeoutError(f"no RecordToolResult for {tool_call_id} in {within_s:g} s")
            await self._read(timeout_ms=500)

    async def read_to_end(self) -> list[RecordToolResult]:
        """Every result published so far (up to the end offsets as of now)."""
        partitions = self._consumer.assignment()
        while not partitions:
            await self._read(timeout_ms=200)
            partitions = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(partitions))
        for partition, end in ends.items():
            while await self._consumer.position(partition) < end:
                await self._read(timeout_ms=500)
        return list(self.results)

    async def _read(self, timeout_ms: int) -> None:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        for records in batches.values():
            for record in records:
                try:
                    message = decode(record.value, record.headers, topic=TopicName.TURNS).message
                except DecodeError:
                    continue
                if isinstance(message, RecordToolResult):
                    self.results.append(message)
        await asyncio.sleep(0)
