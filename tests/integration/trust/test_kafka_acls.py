"""The trust model's ACLs on a broker with an authorizer, over the SASL_SSL listener.

Only the services' own principals may write the internal topics: an authenticated external
publisher (`integrator`) may write `commands` but gets an authorization error on `turns`.
"""

import socket

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError

from contracts.topics import TopicCatalogue, TopicName
from services.admin.acls import main
from services.runtime.kafka_security import kafka_client_options
from tests.secured_kafka import ACL_FILE, SecuredKafka


@pytest.fixture
def catalogue(acl_catalogue: TopicCatalogue) -> TopicCatalogue:
    """The catalogue's topics with the trust model's ACLs (conftest.py)."""
    return acl_catalogue


async def _write(secured_kafka: SecuredKafka, user: str, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secured_kafka.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        **kafka_client_options(secured_kafka.settings(user)),
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"session-1")
    finally:
        await producer.stop()


async def test_an_external_principal_cannot_write_turns(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(secured_kafka, "integrator", catalogue.name(TopicName.TURNS))


async def test_the_orchestration_principal_writes_turns(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    await _write(secured_kafka, "agent-orchestration", catalogue.name(TopicName.TURNS))


async def test_an_external_principal_writes_commands(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    await _write(secured_kafka, "integrator", catalogue.name(TopicName.COMMANDS))


@pytest.mark.parametrize(
    "topic",
    [
        TopicName.LLM_REQUESTS,
        TopicName.LLM_RESULTS,
        TopicName.LLM_STREAM,
        TopicName.AUDIT,
        TopicName.DEAD_LETTERS,
        TopicName.SESSION_EVENTS,
    ],
)
async def test_no_external_principal_writes_an_internal_topic(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue, topic: TopicName
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _write(secured_kafka, "gateway", catalogue.name(topic))


def test_applying_against_an_unreachable_broker_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As `services.admin.topics` and the CLI say it (it was a traceback with exit 1).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", closed)

    assert main(["--file", str(ACL_FILE)]) == 3

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"acls: cannot reach Kafka at {closed} ("), line
