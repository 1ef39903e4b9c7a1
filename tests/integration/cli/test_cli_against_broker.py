import subprocess
import sys

import pytest
from aiokafka import AIOKafkaProducer

from services.runtime.partitioning import partition_for

pytestmark = pytest.mark.integration


async def test_client_partition_matches_the_producers(
    kafka_bootstrap_servers: str, topic_factory: object
) -> None:
    topic = await topic_factory("cli-partitions", partitions=12)  # type: ignore[operator]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for i in range(50):
            key = f"session-{i}"
            metadata = await producer.send_and_wait(topic, b"x", key=key.encode())
            assert metadata.partition == partition_for(key, 12), key
    finally:
        await producer.stop()


def test_unreachable_broker_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "groups", "lag"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in lines[0]


def test_an_unreachable_database_is_named_without_its_password() -> None:
    uri = "mongodb://admin:S3cret@127.0.0.1:1/?directConnection=true"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "sessions", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"AGENT_RUNTIME_MONGODB_URI": uri, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "S3cret" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach MongoDB at mongodb://admin:***@127.0.0.1:1/" in lines[0]
