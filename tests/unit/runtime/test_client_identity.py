"""Every service names its Kafka clients and consumer group after itself, under the topic prefix."""

import pytest

from services.agent_orchestration.settings import OrchestrationSettings
from services.audit.settings import AuditSettings
from services.gateway.api_keys import hash_api_key
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings
from services.session_commands.settings import SessionCommandsSettings

pytestmark = pytest.mark.unit


def test_consumer_groups_follow_the_topic_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_PREFIX", "staging.")

    assert SessionCommandsSettings().session_commands_consumer_group == "staging.session-commands"
    assert OrchestrationSettings().orchestration_consumer_group == "staging.agent-orchestration"
    assert LLMInvocationSettings().llm_consumer_group == "staging.llm-invocation"
    assert AuditSettings().audit_consumer_group == "staging.audit"


def test_an_explicit_group_wins_over_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("AGENT_RUNTIME_AUDIT_CONSUMER_GROUP", "audit-replay")

    assert AuditSettings().audit_consumer_group == "audit-replay"


def test_the_broker_clients_carry_the_service_name() -> None:
    runtime = ServiceRuntime("audit", RuntimeSettings(topic_prefix="t."), configure_logs=False)

    assert runtime.broker.config.client_id == "t.audit"


async def test_the_producer_carries_the_service_name_too() -> None:
    runtime = ServiceRuntime("audit", RuntimeSettings(topic_prefix="t."), configure_logs=False)

    assert runtime.producer.client_id == "t.audit"


def test_the_gateways_kafka_clients_carry_its_name() -> None:
    # The publisher was "agent-runtime-gateway" whatever the prefix; the event feed and the
    # stream replays had aiokafka's default name.
    settings = GatewaySettings(topic_prefix="t.", gateway_api_keys={hash_api_key("k"): "acme"})
    gateway = build_app(settings).state.gateway

    clients = (gateway.exchange._publisher, gateway.streams.feed, gateway.streams.replay)
    assert [client._client_options["client_id"] for client in clients] == ["t.gateway"] * 3
