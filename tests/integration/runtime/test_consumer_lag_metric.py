"""Broker lag per partition against the real broker: records waiting behind a busy session
show as lag of exactly their count, and it returns to 0 once they are handled."""

import asyncio

import pytest

from services.runtime import Record, RuntimeSettings, ServiceRuntime
from tests.conftest import TopicFactory
from tests.integration.runtime.harness import eventually, produce

pytestmark = pytest.mark.integration


async def test_lag_is_the_records_past_the_done_offset_and_drops_to_zero(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, unique_suffix: str
) -> None:
    topic = await topic_factory("lag", 1)
    dead = await topic_factory("dead-letters", 1)
    group = f"lag-{unique_suffix}"
    runtime = ServiceRuntime(
        "lag-test",
        RuntimeSettings(
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            dead_letter_topic=dead,
            commit_interval_s=0.2,
            health_port=0,
            log_format="console",
        ),
        configure_logs=False,
    )
    release = asyncio.Event()
    handled: list[int] = []

    @runtime.consumer(topic, group_id=group)
    async def handle(record: Record) -> None:
        await release.wait()  # one session: the first record holds the five behind it
        handled.append(record.offset)

    def lag() -> float | None:
        labels = {"service": "lag-test", "group": group, "topic": topic, "partition": "0"}
        return runtime.registry.get_sample_value("agent_runtime_consumer_lag_records", labels)

    await produce(kafka_bootstrap_servers, topic, ["s1"] * 6)
    await runtime.app.start()
    try:
        # Offsets 0-5 on the broker (high-water mark 6), none done: the done offset is 0.
        await eventually(lambda: lag() == 6, 30, "lag 6 while the session's first record waits")
        release.set()
        await eventually(lambda: len(handled) == 6, 30, "all six handled")
        await eventually(lambda: lag() == 0, 30, "lag 0 once they are handled")
        await produce(kafka_bootstrap_servers, topic, ["s1"] * 3)
        await eventually(lambda: len(handled) == 9, 30, "three more handled")
        await eventually(lambda: lag() == 0, 30, "lag back to 0")
    finally:
        await runtime.app.stop()
