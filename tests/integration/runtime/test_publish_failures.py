"""`ServiceRuntime.publish` against the real broker: the one place a failed publish is classified.

A partition the broker cannot serve (here: a topic not provisioned yet, which fails exactly like a
partition without a leader: no metadata within the request timeout) is an outage: the handler's
record is retried, never dead-lettered, and goes through once the broker can take it. A record
the broker refuses for what it is (larger than a request may be) is `UnpublishableRecord`.
"""

import gc
import socket

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from contracts.codec import EncodedRecord
from services.runtime import Record, RetryableError, RuntimeSettings, ServiceRuntime
from services.runtime.errors import UnpublishableRecord
from services.runtime.record_producer import RecordProducer
from tests.conftest import TopicFactory
from tests.integration.runtime.harness import committed_reaching, eventually, produce

pytestmark = pytest.mark.integration


def settings_for(bootstrap: str, dead_letters: str) -> RuntimeSettings:
    return RuntimeSettings(
        kafka_bootstrap_servers=bootstrap,
        dead_letter_topic=dead_letters,
        commit_interval_s=0.2,
        health_port=0,
        log_format="console",
        kafka_request_timeout_ms=5_000,
        retry_initial_backoff_s=0.2,
        retry_max_backoff_s=1.0,
    )


async def test_a_broker_that_cannot_take_the_publish_is_an_outage_retried_not_dead_lettered(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    source = await topic_factory("publish-source", 1)
    dead = await topic_factory("publish-dead-letters", 1)
    target = f"test.publish-target.{unique_suffix}"  # provisioned only after the first failure
    runtime = ServiceRuntime(
        "publish-test", settings_for(kafka_bootstrap_servers, dead), configure_logs=False
    )
    failures: list[BaseException] = []
    published: list[int] = []

    @runtime.consumer(source, group_id=f"publish-{unique_suffix}")
    async def forward(record: Record) -> None:
        try:
            await runtime.publish(target, EncodedRecord(b"session-1", b"{}", []))
        except Exception as error:
            failures.append(error)
            raise
        published.append(record.offset)

    await produce(kafka_bootstrap_servers, source, ["session-1"])
    await runtime.app.start()
    try:
        await eventually(lambda: len(failures) >= 1, 30, "a failed publish")
        await topic_factory("publish-target", 1)  # the broker can take it now
        await eventually(lambda: published == [0], 60, "the retried publish going through")
        await committed_reaching(
            kafka_bootstrap_servers, f"publish-{unique_suffix}", {(source, 0): 1}, within=30
        )
    finally:
        await runtime.app.stop()

    assert all(isinstance(error, RetryableError) for error in failures), failures
    assert await _end_offset(kafka_bootstrap_servers, dead) == 0  # nothing dead-lettered


async def test_a_record_larger_than_a_request_may_be_is_unpublishable(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory
) -> None:
    topic = await topic_factory("publish-oversize", 1)
    runtime = ServiceRuntime(
        "publish-test", settings_for(kafka_bootstrap_servers, topic), configure_logs=False
    )
    await runtime.producer.start()
    try:
        with pytest.raises(UnpublishableRecord):
            await runtime.publish(topic, EncodedRecord(b"session-1", b"x" * 2_000_000, []))
    finally:
        await runtime.producer.stop()


async def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        ends = await consumer.end_offsets([partition])
    finally:
        await consumer.stop()
    return int(ends[partition])


async def test_a_producer_that_cannot_start_is_closed_not_left_to_the_collector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A service whose broker is unreachable at start writes one CRITICAL line and exits 1
    # (docs/operations.md); an unclosed producer added asyncio's "Unclosed AIOKafkaProducer"
    # error after it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    producer = RecordProducer(
        RuntimeSettings(kafka_bootstrap_servers=f"127.0.0.1:{closed_port}"), "start-test"
    )
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    gc.collect()
    assert "Unclosed AIOKafkaProducer" not in caplog.text
