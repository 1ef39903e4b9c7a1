"""The whole pipeline: the four services as subprocesses against the real broker and database."""

import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topics import TopicCatalogue
from services.admin.topics import delete_topics, ensure_topics
from services.cli.settings import CliSettings
from services.cli.stack import SERVICES, ServiceSpec, ServiceStack, replicated


@dataclass
class Pipeline:
    stack: ServiceStack
    settings: CliSettings
    catalogue: TopicCatalogue


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    """More environment for the four services; a test module overrides this fixture (e.g. to
    point llm-invocation at a fake provider)."""
    return {}


@pytest.fixture
async def pipeline(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    pipeline_env: dict[str, str],
) -> AsyncIterator[Pipeline]:
    """One instance of each service."""
    async with running_pipeline(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        unique_suffix,
        tmp_path,
        extra_env=pipeline_env,
    ) as running:
        yield running


@pytest.fixture
async def replicated_pipeline(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    pipeline_env: dict[str, str],
) -> AsyncIterator[Pipeline]:
    """Two instances of each service (`<service>-1`, `<service>-2`), sharing each group."""
    async with running_pipeline(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        unique_suffix,
        tmp_path,
        services=replicated(SERVICES, 2),
        extra_env=pipeline_env,
    ) as running:
        yield running


@contextlib.asynccontextmanager
async def running_pipeline(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    services: tuple[ServiceSpec, ...] = SERVICES,
    extra_env: Mapping[str, str | None] | None = None,
) -> AsyncIterator[Pipeline]:
    """The services as subprocesses on topics, groups and a database of this test alone."""
    prefix = f"e2e-{unique_suffix}."
    catalogue = TopicCatalogue(prefix=prefix)
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    env: dict[str, str | None] = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_MONGODB_URI": mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": mongo_database_name,
        "AGENT_RUNTIME_TOPIC_PREFIX": prefix,
        "AGENT_RUNTIME_LOG_FORMAT": "json",
        "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
        "AGENT_RUNTIME_DRAIN_TIMEOUT_S": "10",
        # A killed consumer's partitions move after the session timeout: keep chaos runs short.
        "AGENT_RUNTIME_SESSION_TIMEOUT_MS": "10000",
        "AGENT_RUNTIME_SESSION_COMMANDS_CONSUMER_GROUP": f"{prefix}session-commands",
        "AGENT_RUNTIME_ORCHESTRATION_CONSUMER_GROUP": f"{prefix}agent-orchestration",
        "AGENT_RUNTIME_LLM_CONSUMER_GROUP": f"{prefix}llm-invocation",
        "AGENT_RUNTIME_AUDIT_CONSUMER_GROUP": f"{prefix}audit",
        # The offline provider: no LLM endpoint, whatever the developer's shell has.
        **dict.fromkeys(("LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL")),
        **(extra_env or {}),
    }
    ports = dict(zip((s.name for s in services), free_ports(len(services)), strict=True))
    stack = ServiceStack(tmp_path / "run", env=env, services=services, ports=ports)
    settings = CliSettings(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        topic_prefix=prefix,
        tenant_id=f"tenant-{unique_suffix}",
        reply_timeout_s=60.0,
    )
    stack.start_all()
    try:
        await stack.wait_ready(timeout_s=90.0)
        yield Pipeline(stack=stack, settings=settings, catalogue=catalogue)
    except BaseException:
        _dump_logs(stack)
        raise
    finally:
        stack.stop_all(timeout_s=20.0)
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


def _dump_logs(stack: ServiceStack) -> None:
    for name in stack.services:
        path = stack.log_path(name)
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-40:]
            print(f"----- {name} ({path}) -----", *tail, sep="\n")
