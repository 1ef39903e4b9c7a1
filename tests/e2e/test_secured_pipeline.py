"""One turn through the four services over the broker's SASL_SSL listener: each service logs in
as its own SCRAM principal, the trust model's ACLs are in force, the client is an external
publisher (`integrator`) bound to its tenant by session-commands."""

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.commands import CreateSession, SubmitUserMessage
from contracts.session_events import SessionCreated
from contracts.topics import TopicCatalogue
from services.admin.acls import apply_acls, load_roles, trust_model_acls
from services.admin.topics import delete_topics, ensure_topics
from services.cli.session_client import SessionClient, new_id
from services.cli.settings import CliSettings
from services.cli.stack import SERVICES, ServiceStack
from tests.secured_kafka import ACL_FILE, SecuredKafka

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SOURCE = "secured-e2e-client"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
async def secured_stacks(
    secured_kafka: SecuredKafka,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[CliSettings, list[ServiceStack]]]:
    prefix = f"sec-{unique_suffix}."
    tenant = f"tenant-{unique_suffix}"
    catalogue = TopicCatalogue(prefix=prefix, partitions=4)
    bootstrap = secured_kafka.bootstrap_servers
    admin = secured_kafka.settings("admin")
    await ensure_topics(bootstrap, catalogue.specs(), security=admin)
    await apply_acls(bootstrap, trust_model_acls(catalogue, load_roles(ACL_FILE)), security=admin)
    common: dict[str, str | None] = {
        "AGENT_RUNTIME_MONGODB_URI": mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": mongo_database_name,
        "AGENT_RUNTIME_TOPIC_PREFIX": prefix,
        "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
        "AGENT_RUNTIME_DRAIN_TIMEOUT_S": "10",
        "AGENT_RUNTIME_SESSION_COMMANDS_CONSUMER_GROUP": f"{prefix}session-commands",
        "AGENT_RUNTIME_ORCHESTRATION_CONSUMER_GROUP": f"{prefix}agent-orchestration",
        "AGENT_RUNTIME_LLM_CONSUMER_GROUP": f"{prefix}llm-invocation",
        "AGENT_RUNTIME_AUDIT_CONSUMER_GROUP": f"{prefix}audit",
        "AGENT_RUNTIME_COMMAND_SOURCES": json.dumps({SOURCE: {"tenants": [tenant]}}),
        **dict.fromkeys(("LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL")),  # the offline provider
    }
    # One stack per service: each logs in as its own principal.
    stacks = [
        ServiceStack(
            tmp_path / spec.name,
            env={**common, **secured_kafka.env(spec.name)},
            services=[spec],
            ports={spec.name: port},
        )
        for spec, port in zip(SERVICES, _free_ports(len(SERVICES)), strict=True)
    ]
    client = CliSettings(
        _env_file=None,
        **secured_kafka.fields("integrator"),
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        topic_prefix=prefix,
        tenant_id=tenant,
        cli_source=SOURCE,
        reply_timeout_s=60.0,
    )
    for stack in stacks:
        stack.start_all()
    try:
        for stack in stacks:
            await stack.wait_ready(timeout_s=90.0)
        yield client, stacks
    except BaseException:
        for stack in stacks:
            for name in stack.services:
                print(
                    f"----- {name} -----",
                    *stack.log_path(name).read_text().splitlines()[-30:],
                    sep="\n",
                )
        raise
    finally:
        for stack in stacks:
            stack.stop_all(timeout_s=20.0)
        await delete_topics(bootstrap, [s.name for s in catalogue.specs()], security=admin)


async def test_a_turn_runs_through_the_four_services_over_sasl_ssl(
    secured_stacks: tuple[CliSettings, list[ServiceStack]],
) -> None:
    settings, _ = secured_stacks
    session_id = new_id("secured")
    ids = {"session_id": session_id, "tenant_id": settings.tenant_id}
    async with SessionClient(settings, session_id) as client:
        created = await client.submit(CreateSession(id=new_id("cmd"), **ids, title="over TLS"))
        turn = await client.submit(
            SubmitUserMessage(id=new_id("cmd"), **ids, message_id=new_id("msg"), content="hi")
        )

    assert any(isinstance(u, SessionCreated) for u in created.updates), created
    assert turn.completed is not None, turn
    assert turn.rejected is None
