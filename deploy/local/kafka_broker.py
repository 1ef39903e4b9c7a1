"""A single-node Apache Kafka broker in KRaft mode (broker + controller in one JVM) on loopback."""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
import uuid
from pathlib import Path

from kafka_security import (
    SecurityMaterial,
    create_material,
    sasl_ssl_properties,
    scram_format_arguments,
    security_material,
)
from processes import ManagedProcess
from settings import InfraSettings

# The development listener: User:ANONYMOUS, a super user (docs/security.md says why only here).
DEV_SUPER_USERS = "User:ANONYMOUS;User:admin"


def broker_process(settings: InfraSettings) -> ManagedProcess:
    return ManagedProcess(
        name="kafka",
        pid_file=settings.kafka_dir / "kafka.pid",
        log_file=settings.kafka_dir / "logs" / "broker.log",
        marker=str(settings.kafka_dir / "server.properties"),
    )


def start_broker(settings: InfraSettings, libs: Path) -> int:
    settings.kafka_dir.mkdir(parents=True, exist_ok=True)
    formatted = (settings.kafka_dir / "data" / "meta.properties").exists()
    material = security_material(settings) if formatted else create_material(settings)
    # SCRAM users are made by the storage format: a data dir formatted without them gets no
    # SASL_SSL listener rather than one nobody can log in to.
    secured = material if material.complete else None
    config = _write_server_properties(settings, secured)
    if not formatted:
        _format_storage(settings, libs, config, scram_format_arguments(material))
    command = [
        "java",
        f"-Xms{min_heap(settings.kafka_heap)}",
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={settings.deploy_dir / 'kafka-log4j2.properties'}",
        f"-Dkafka.logs.dir={settings.kafka_dir / 'logs'}",
        "-cp",
        f"{libs}/*",
        "kafka.Kafka",
        str(config),
    ]
    return broker_process(settings).start(command, cwd=settings.kafka_dir)


def min_heap(max_heap: str) -> str:
    """Half of the maximum heap: enough to start without growing, without reserving it all."""
    number, unit = int(max_heap[:-1]), max_heap[-1]
    return f"{max(number // 2, 1)}{unit}"


def _write_server_properties(settings: InfraSettings, secured: SecurityMaterial | None) -> Path:
    # Rewritten on every start so that port overrides (KAFKA_PORT...) take effect; the storage
    # format does not depend on listener ports.
    host, port, controller = settings.host, settings.kafka_port, settings.kafka_controller_port
    listeners = {"PLAINTEXT": f"{host}:{port}"}
    if secured is not None:
        listeners["SASL_SSL"] = f"{host}:{settings.kafka_sasl_port}"
    advertised = ",".join(f"{name}://{address}" for name, address in listeners.items())
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller}",
        "listeners": f"{advertised},CONTROLLER://{host}:{controller}",
        "advertised.listeners": advertised,
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": (
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
        ),
        # ACLs are enforced for authenticated principals (the SASL_SSL listener); the loopback
        # PLAINTEXT and controller listeners authenticate nobody, so User:ANONYMOUS is a super
        # user there - acceptable on a developer's loopback, never in production.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": DEV_SUPER_USERS,
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(settings.kafka_dir / "data"),
        # One node: every internal topic has a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Fewer __consumer_offsets partitions: faster start on 2 cores, no loss of function.
        "offsets.topic.num.partitions": "10",
        # Tests start and stop many consumer groups: do not wait 3 s before the first rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # Topics are provisioned explicitly (services/admin/topics.py) with their partition
        # counts; an auto-created 1-partition topic would silently break per-key parallelism.
        "auto.create.topics.enable": "false",
        "num.partitions": "12",
        # The default 128 MB dedupe buffer is allocated on the heap at start.
        "log.cleaner.dedupe.buffer.size": "16777216",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "log.retention.hours": "168",
        "log.segment.bytes": "67108864",
        "delete.topic.enable": "true",
    }
    if secured is not None:
        properties |= sasl_ssl_properties(secured, "SASL_SSL")
    config = settings.kafka_dir / "server.properties"
    config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    return config


def _format_storage(
    settings: InfraSettings, libs: Path, config: Path, extra_arguments: list[str]
) -> None:
    cluster_id = _cluster_id(settings)
    result = subprocess.run(
        [
            "java",
            "-Xmx256m",
            "-cp",
            f"{libs}/*",
            f"-Dlog4j2.configurationFile={settings.deploy_dir / 'kafka-log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
            "--ignore-formatted",
            *extra_arguments,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")


def _cluster_id(settings: InfraSettings) -> str:
    stored = settings.kafka_dir / "cluster.id"
    if stored.exists():
        return stored.read_text().strip()
    # What `kafka-storage.sh random-uuid` prints: 22 url-safe base64 chars; never a leading '-'
    # (it would parse as an option).
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            break
    stored.write_text(candidate + "\n")
    return candidate


def broker_is_healthy(bootstrap_servers: str, timeout_s: float = 5.0) -> bool:
    """True when the broker answers a metadata request and names a controller."""
    try:
        return asyncio.run(asyncio.wait_for(_describe_cluster(bootstrap_servers), timeout_s))
    except Exception:
        return False


async def _describe_cluster(bootstrap_servers: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    # While the broker starts, every probe logs "Unable connect"; the wait loop reports instead.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=4000, retry_backoff_ms=200
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) != -1
    finally:
        await admin.close()
