"""Broker down → 503 with Retry-After; back up → the same gateway process works again.

The shared broker is never touched: the gateway points at an address of its own where at
first nothing listens; the test then starts a dedicated Kafka there (deploy/local/infra.py
with its own ports and state directory, as `make infra-up` would), and later stops it again.
What "works" means without the four services: the command is acknowledged by the broker
(`Prefer: respond-async` → 202), and the record on `commands` carries the caller's request id
and trace.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.codec import decode
from contracts.commands import SubmitUserMessage
from services.gateway.event_feed import SessionEventFeed
from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary
from tests.integration.gateway.in_process import (
    InProcessGateway,
    closed_port,
    in_process_gateway,
)
from tests.support.dedicated_kafka import DedicatedKafka

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _send(gw: InProcessGateway, request_id: str) -> tuple[int, dict[str, object]]:
    response = await gw.http.post(
        "/v1/sessions/s-outage/messages",
        json={"content": "are you there?"},
        headers={
            **gw.auth,
            "Prefer": "respond-async",
            "X-Request-ID": request_id,
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        },
    )
    return response.status_code, response.json()


class _Filtered(logging.Handler):
    """Writes nothing; its filters see every aiokafka line, as the service's log handler's do."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


async def _eventually(condition: Callable[[], Awaitable[bool]], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_broker_down_503_then_back_up_works(
    mongodb_uri: str, mongo_database_name: str, tmp_path: Path
) -> None:
    broker = DedicatedKafka(tmp_path / "infra", port=closed_port())
    bootstrap = broker.bootstrap
    outages = BrokerOutageSummary(quiet_s=1.0)
    watcher = _Filtered()
    watcher.addFilter(outages)
    logging.getLogger("aiokafka").addHandler(watcher)
    async with in_process_gateway(
        broker_outages=outages,
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        kafka_bootstrap_servers=bootstrap,
        gateway_produce_timeout_s=2.0,
    ) as gw:
        status, body = await _send(gw, "req-down-1")
        assert (status, body["code"]) == (503, "broker_unavailable")
        assert outages.broker_unreachable

        async def broker_not_ready() -> bool:
            response = await gw.http.get("/health/ready")
            return response.status_code == 503 and response.json()["checks"]["broker"] is False

        async def outage_over() -> bool:
            return not outages.broker_unreachable

        try:
            await asyncio.to_thread(broker.up)
            await gw.until_ready(90.0, "gateway not ready after the broker came back")
            # The gateway writes "broker reachable again" as the consumer services do: its
            # outage summary is told when the errors stopped.
            await _eventually(outage_over, 30.0, "the outage never ended in the gateway's logs")
            status, body = await _send(gw, "req-up-1")
            assert status == 202, body
            assert body["status"] == "pending"

            consumer = AIOKafkaConsumer(
                "agent-runtime.commands",
                bootstrap_servers=bootstrap,
                auto_offset_reset="earliest",
                group_id=None,
            )
            await consumer.start()
            try:
                record = await asyncio.wait_for(consumer.getone(), 30)
            finally:
                await consumer.stop()
            decoded = decode(record.value, record.headers)
            assert isinstance(decoded.message, SubmitUserMessage)
            assert decoded.message.id == body["command_id"]
            assert decoded.envelope.correlation_id == "req-up-1"
            assert decoded.envelope.traceparent is not None
            assert decoded.envelope.traceparent.split("-")[1] == TRACE_ID  # one trace

            await asyncio.to_thread(broker.down)
            status, body = await _send(gw, "req-down-2")
            assert (status, body["code"]) == (503, "broker_unavailable")
            assert bootstrap not in str(body["detail"])  # the deployment's internals stay in the log
            # Not ready while the broker is gone (docs/operations.md, Health): a producer that
            # connected once stays "connected" through an outage.
            await _eventually(
                broker_not_ready, 30.0, "the gateway stayed ready with its broker down"
            )
        finally:
            logging.getLogger("aiokafka").removeHandler(watcher)
            await asyncio.to_thread(broker.down)


async def test_a_feed_that_cannot_reach_the_broker_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A broker down when the gateway starts: the feed retries every second, and wrote a
    # WARNING each time (3,600 lines an hour) beside the outage summary's one per 10 s.
    caplog.set_level(logging.DEBUG, logger="services.gateway.event_feed")
    feed = SessionEventFeed(f"127.0.0.1:{closed_port()}", "test.feed-events")

    def attempts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "services.gateway.event_feed"]

    async def retried_twice() -> bool:
        return len(attempts()) >= 3

    await feed.start()
    try:
        await _eventually(retried_twice, 30.0, "the feed did not retry")
    finally:
        await feed.stop()
    assert [r.levelno for r in attempts()][:3] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
