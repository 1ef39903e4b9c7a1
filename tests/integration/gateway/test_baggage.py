"""A caller's W3C `baggage` reaches Kafka beside its `traceparent`: the command the gateway
publishes carries both, so the whole turn can read it (the services carry it on)."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer

from contracts.codec import decode
from contracts.topics import TopicCatalogue, TopicName
from tests.integration.gateway.in_process import in_process_gateway
from tests.integration.service_harness import provisioned_topics

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_published_command_carries_the_callers_baggage_and_trace(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    catalogue = TopicCatalogue(prefix=f"baggage-{unique_suffix}.")
    async with (
        provisioned_topics(kafka_bootstrap_servers, catalogue),
        in_process_gateway(
            mongodb_uri=mongodb_uri,
            mongodb_database=mongo_database_name,
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            topic_prefix=catalogue.prefix,
        ) as gw,
    ):
        await gw.until_ready()
        response = await gw.http.post(
            "/v1/sessions/s-baggage/messages",
            json={"content": "hello"},
            headers={
                **gw.auth,
                "Prefer": "respond-async",
                "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
                "baggage": "tier=gold,experiment=b",
            },
        )
        assert response.status_code == 202, response.text

        consumer = AIOKafkaConsumer(
            catalogue.name(TopicName.COMMANDS),
            bootstrap_servers=kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            group_id=None,
        )
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
    headers = dict(record.headers)
    assert set(headers["baggage"].decode().split(",")) == {"tier=gold", "experiment=b"}
    traceparent = decode(record.value, record.headers).envelope.traceparent
    # No exporter in this process: the gateway makes no span of its own and passes the caller's
    # trace context on unchanged (with one, its server span would be the parent).
    assert traceparent == f"00-{TRACE_ID}-00f067aa0ba902b7-01"
