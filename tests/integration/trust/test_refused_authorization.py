"""A service whose principal the ACLs do not grant what it reads stops at start in one line
naming the principal and what it lacks (exit 2, as a refused login): it said the topics "do not
exist: create the catalogue's topics first" (they did), or stopped with a
GroupAuthorizationFailedError traceback (exit 1). The gateway's live streams likewise."""

import asyncio
import logging

import pytest

from contracts.topics import TopicCatalogue, TopicName
from services.gateway.event_feed import SessionEventFeed
from services.runtime.kafka_security import kafka_client_options
from tests.integration.trust.test_refused_login import _run
from tests.secured_kafka import SecuredKafka

pytestmark = pytest.mark.integration


def _env(secured_kafka: SecuredKafka, user: str, catalogue: TopicCatalogue) -> dict[str, str]:
    return {**secured_kafka.env(user), "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix}


def test_a_service_without_read_on_its_topics_names_them(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    # The gateway's principal reads session-events only of what audit consumes.
    result = _run(["services.audit"], _env(secured_kafka, "gateway", acl_catalogue))

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    naming = [line for line in output.splitlines() if "Kafka does not let" in line]
    assert len(naming) == 1, output
    assert "AGENT_RUNTIME_KAFKA_SASL_USERNAME=gateway read topics" in naming[0]
    assert acl_catalogue.name(TopicName.TURNS) in naming[0]
    assert acl_catalogue.name(TopicName.SESSION_EVENTS) not in naming[0]  # that one it may
    assert "do not exist" not in output
    assert "Traceback" not in output


def test_a_service_without_read_on_its_group_names_it(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    # audit's principal reads llm-results and session-events, not orchestration's group.
    result = _run(["services.agent_orchestration"], _env(secured_kafka, "audit", acl_catalogue))

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    naming = [line for line in output.splitlines() if "Kafka does not let" in line]
    assert len(naming) == 1, output
    assert (
        f"AGENT_RUNTIME_KAFKA_SASL_USERNAME=audit read consumer group "
        f"{acl_catalogue.prefix}agent-orchestration" in naming[0]
    )
    assert "Traceback" not in output


async def test_the_gateway_says_its_principal_may_not_read_the_live_stream(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue, caplog: pytest.LogCaptureFixture
) -> None:
    # audit's principal reads session-events but not llm-stream: the gateway's live streams
    # answer 503, and the line says why ("does not exist" sent the operator to create it).
    feed = SessionEventFeed(
        secured_kafka.bootstrap_servers,
        acl_catalogue.name(TopicName.SESSION_EVENTS),
        client_options=kafka_client_options(secured_kafka.settings("audit")),
        stream_topic=acl_catalogue.name(TopicName.LLM_STREAM),
    )
    with caplog.at_level(logging.WARNING, logger="services.gateway.event_feed"):
        await feed.start()
        try:
            async with asyncio.timeout(60):
                await feed.positioned()
        finally:
            await feed.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "services.gateway.event_feed"]
    stream = acl_catalogue.name(TopicName.LLM_STREAM)
    assert any("does not let" in line and stream in line for line in lines), lines
    assert not any("does not exist" in line for line in lines), lines
