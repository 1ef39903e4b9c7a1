"""Test harness: where Kafka and the Mongo-compatible server come from, and per-test isolation.

Each service is resolved once per session, in this order:
  1. `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URI` from the environment;
  2. testcontainers (Kafka in KRaft mode, real MongoDB) when a Docker engine answers;
  3. the local infra scripts (`deploy/local/infra.py`, the same as `make infra-up`): a server that
     is already healthy is used as it is; one that is not running is started by this session
     and stopped at its end.
`TEST_INFRA=env|docker|local` forces a source. An integration test never skips: when its
infrastructure cannot be had, it fails with the reason.

Every test gets its own topics, consumer groups and database through `unique_suffix`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from pymongo import AsyncMongoClient

from services.admin.topics import TopicSpec, delete_topics, ensure_topics
from tests.secured_kafka import SecuredKafka, dedicated_secured_kafka, local_secured_kafka

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.py"
CATEGORY_MARKERS = ("unit", "integration", "e2e", "chaos")
KAFKA_FIXTURE = "kafka_bootstrap_servers"
SECURED_KAFKA_FIXTURE = "secured_kafka"
MONGO_FIXTURE = "mongodb_uri"


class TopicFactory(Protocol):
    def __call__(self, name: str, partitions: int = 12) -> Awaitable[str]: ...


@dataclass
class Endpoint:
    address: str
    source: str  # said in the closing summary: which real server the tests talked to


@dataclass
class HarnessRecord:
    """What the closing summary reports; filled by fixtures and the report hook."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    ran_against: dict[str, int] = field(
        default_factory=lambda: {"kafka": 0, "kafka-sasl": 0, "mongo": 0}
    )
    integration_ran: int = 0


_record = HarnessRecord()


# --- markers ----------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test without a category marker gets the one its folder names (tests/unit/... -> unit).
    for item in items:
        if any(item.get_closest_marker(m) for m in CATEGORY_MARKERS):
            continue
        parts = Path(str(item.path)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in CATEGORY_MARKERS:
            item.add_marker(parts[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    needs_infra = item.get_closest_marker("integration") or item.get_closest_marker("e2e")
    if needs_infra and report.skipped and not hasattr(report, "wasxfail"):
        # The project's rule: integration tests start their infrastructure or fail, never skip.
        report.outcome = "failed"
        report.longrepr = f"integration test skipped, which is not allowed: {report.longrepr}"
    if report.when == "call" and not report.skipped:
        fixtures = getattr(item, "fixturenames", ())
        if needs_infra:
            _record.integration_ran += 1
        if KAFKA_FIXTURE in fixtures:
            _record.ran_against["kafka"] += 1
        if SECURED_KAFKA_FIXTURE in fixtures:
            _record.ran_against["kafka-sasl"] += 1
        if MONGO_FIXTURE in fixtures:
            _record.ran_against["mongo"] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _record.integration_ran and not any(_record.ran_against.values()):
        return
    write = terminalreporter.write_line
    terminalreporter.section("real infrastructure")
    write(f"{_record.integration_ran} integration/e2e tests ran")
    for name, label in (
        ("kafka", "the real Kafka broker"),
        ("kafka-sasl", "a SASL_SSL listener with ACLs"),
        ("mongo", "the Mongo-compatible server"),
    ):
        if name == "kafka-sasl" and not _record.ran_against[name]:
            continue
        endpoint = _record.endpoints.get(name)
        where = f" at {endpoint.address} ({endpoint.source})" if endpoint else ""
        write(f"{_record.ran_against[name]} tests ran against {label}{where}")


# --- where the servers come from --------------------------------------------------------------


class LocalInfra:
    """Starts the local servers that are not running, and stops at the end only those."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self.started: list[str] = []

    def ensure(self, service: str) -> None:
        if self._run("status", service).returncode == 0:
            return
        self._say(f"\nstarting local {service}: deploy/local/infra.py up {service} ...")
        result = self._run("up", service)
        if result.returncode != 0:
            pytest.fail(
                f"could not start the local {service} (deploy/local/infra.py up {service}):\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
        # Only what this call started is ours to stop: a concurrent session may have won the race.
        if f"{service}: started" in result.stdout:
            self.started.append(service)

    def stop_started(self) -> None:
        if self.started:
            self._say(f"\nstopping what this test session started: {', '.join(self.started)}")
            self._run("down", *self.started)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(INFRA_SCRIPT), *args],
            cwd=REPO_ROOT,
            env={**os.environ, "INFRA_MODE": "local"},  # the Docker path is testcontainers
            capture_output=True,
            text=True,
            check=False,
        )

    def _say(self, line: str) -> None:
        # Shown live even under output capture: a cold start downloads jars for a minute.
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)


def _source_preference() -> str:
    forced = os.environ.get("TEST_INFRA", "auto")
    if forced != "auto":
        return forced
    return "docker" if _docker_engine_answers() else "local"


def _docker_engine_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def _local_infra(request: pytest.FixtureRequest) -> Iterator[LocalInfra]:
    infra = LocalInfra(request.config)
    yield infra
    infra.stop_started()


@pytest.fixture(scope="session")
def kafka_bootstrap_servers(request: pytest.FixtureRequest) -> Iterator[str]:
    """A real Kafka broker with the catalogue's topics provisioned."""
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    source = "env" if from_env else _source_preference()
    if from_env:
        yield from _provisioned(Endpoint(from_env, "KAFKA_BOOTSTRAP_SERVERS"))
    elif source == "docker":
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft() as kafka:
            address = kafka.get_bootstrap_server()
            yield from _provisioned(Endpoint(address, "testcontainers, KRaft"))
    else:
        request.getfixturevalue("_local_infra").ensure("kafka")
        address = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
        yield from _provisioned(Endpoint(address, "local Apache Kafka from deploy/local"))


def _provisioned(endpoint: Endpoint) -> Iterator[str]:
    # The harness provisions the catalogue too, so tests never depend on broker auto-create.
    from services.admin.topics import main as provision

    # In a thread of its own: provisioning runs its own event loop, and this fixture may be
    # first requested while the session's loop is running.
    with ThreadPoolExecutor(max_workers=1) as thread:
        exit_code = thread.submit(provision, ["--bootstrap-servers", endpoint.address]).result()
    if exit_code != 0:
        pytest.fail(f"topic provisioning failed against {endpoint.address}", pytrace=False)
    _record.endpoints["kafka"] = endpoint
    yield endpoint.address


@pytest.fixture(scope="session")
def secured_kafka(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredKafka]:
    """A SASL_SSL listener (generated CA, SCRAM users, ACLs enforced): tests/secured_kafka.py."""
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and _source_preference() == "local":
        request.getfixturevalue(KAFKA_FIXTURE)  # the session's local broker has the listener
    with ThreadPoolExecutor(max_workers=1) as thread:  # its own event loop, as above
        local = thread.submit(local_secured_kafka).result()
    if local is not None:
        _record.endpoints["kafka-sasl"] = Endpoint(local.bootstrap_servers, "deploy/local broker")
        yield local
        return
    for dedicated in dedicated_secured_kafka(tmp_path_factory.mktemp("secured-kafka")):
        where = "a dedicated broker of this session"
        _record.endpoints["kafka-sasl"] = Endpoint(dedicated.bootstrap_servers, where)
        yield dedicated


@pytest.fixture(scope="session")
def mongodb_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """A MongoDB-wire server: real MongoDB under Docker, mongo-java-server locally."""
    from_env = os.environ.get("MONGODB_URI")
    source = "env" if from_env else _source_preference()
    if from_env:
        _record.endpoints["mongo"] = Endpoint(from_env, "MONGODB_URI")
        yield from_env
    elif source == "docker":
        from testcontainers.community.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:7.0") as mongo:
            uri = mongo.get_connection_url()
            _record.endpoints["mongo"] = Endpoint(uri, "testcontainers, mongo:7.0")
            yield uri
    else:
        request.getfixturevalue("_local_infra").ensure("mongo")
        port = os.environ.get("MONGO_PORT", "27017")
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        _record.endpoints["mongo"] = Endpoint(uri, "local mongo-java-server from deploy/local")
        yield uri


# --- per-test isolation -----------------------------------------------------------------------


@pytest.fixture
def unique_suffix() -> str:
    """Random; put it in every topic, consumer group and database name a test creates."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def topic_factory(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> AsyncIterator[TopicFactory]:
    """`await topic_factory("orders", partitions=12)` -> "test.orders.<suffix>", created now.

    Topics are deleted when the test ends, so the broker does not pile up partitions.
    """
    created: list[str] = []

    async def create(name: str, partitions: int = 12) -> str:
        full_name = f"test.{name}.{unique_suffix}"
        await ensure_topics(kafka_bootstrap_servers, [TopicSpec(full_name, partitions)])
        if full_name not in created:
            created.append(full_name)
        return full_name

    yield create
    if created:
        await delete_topics(kafka_bootstrap_servers, created)


@pytest.fixture
async def mongo_database_name(mongodb_uri: str, unique_suffix: str) -> AsyncIterator[str]:
    """A database name of this test alone; the database is dropped when the test ends."""
    name = f"test_{unique_suffix}"
    yield name
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()
