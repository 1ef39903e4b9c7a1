"""`make infra-up | infra-down | infra-status | infra-reset`: real Kafka + a Mongo-wire server.

Without a Docker engine (the default on developer machines and CI here) it runs Apache Kafka in
KRaft mode and mongo-java-server as local JVM processes, from jars that Maven resolves from Maven
Central into .cache/. With a Docker engine it uses compose.kafka.yml instead (set INFRA_MODE=local
to force the local processes). See deploy/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from docker_compose import compose, compose_up, docker_engine_answers
from jars import resolve_kafka, resolve_mongo
from kafka_broker import broker_is_healthy, broker_process, start_broker
from kafka_security import security_material
from mongo_server import mongo_is_healthy, mongo_process, start_mongo
from prerequisites import MissingPrerequisite, require_tools
from processes import ManagedProcess
from settings import InfraSettings, load_settings


@dataclass(frozen=True)
class Service:
    name: str
    endpoint: str
    port: int
    process: ManagedProcess
    healthy: Callable[[], bool]
    start: Callable[[], int]


SERVICE_NAMES = ("kafka", "mongo")


def services(settings: InfraSettings, only: Sequence[str] = ()) -> list[Service]:
    return [s for s in _all_services(settings) if not only or s.name in only]


def _all_services(settings: InfraSettings) -> list[Service]:
    return [
        Service(
            name="kafka",
            endpoint=settings.kafka_bootstrap_servers,
            port=settings.kafka_port,
            process=broker_process(settings),
            healthy=lambda: broker_is_healthy(settings.kafka_bootstrap_servers),
            start=lambda: start_broker(settings, resolve_kafka(settings)),
        ),
        Service(
            name="mongo",
            endpoint=settings.mongodb_uri,
            port=settings.mongo_port,
            process=mongo_process(settings),
            healthy=lambda: mongo_is_healthy(settings.mongodb_uri),
            start=lambda: start_mongo(settings, resolve_mongo(settings)),
        ),
    ]


def use_docker() -> bool:
    mode = os.environ.get("INFRA_MODE", "auto")
    if mode == "auto":
        return docker_engine_answers()
    return mode == "docker"


def up(settings: InfraSettings, only: Sequence[str] = ()) -> int:
    started_at = time.monotonic()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    mode_file = settings.state_dir / "mode"
    if use_docker():
        mode_file.write_text("docker\n")
        if compose_up(settings, only) != 0:
            return 1
    else:
        mode_file.write_text("local\n")
        require_tools()
        # Each service resolves its jars only when it must start; Kafka boots while Maven
        # fetches mongo-java-server.
        waiting = [s for s in services(settings, only) if _start_unless_running(s)]
        for service in waiting:
            _wait_ready(service, settings.ready_timeout_s)
    if (not only or "kafka" in only) and _provision_topics(settings) != 0:
        return 1
    _print_summary(settings)
    print(f"infra-up: ready in {time.monotonic() - started_at:.1f}s", flush=True)
    return 0


def _start_unless_running(service: Service) -> bool:
    """Start the service unless it already runs; returns True when we must wait for it."""
    pid = service.process.pid()
    if pid is not None:
        if service.healthy():
            print(f"{service.name}: already running (pid {pid}) on {service.endpoint}")
            return False
        print(f"{service.name}: running (pid {pid}) but not ready yet, waiting")
        return True
    if _port_open(service.port):
        if service.healthy():
            # Someone else's server (another checkout, a manual start): use it, never stop it.
            print(
                f"{service.name}: a server we did not start answers on {service.endpoint}; using it"
            )
            return False
        raise RuntimeError(
            f"{service.name}: port {service.port} is taken by another program; stop it or set "
            f"{service.name.upper()}_PORT"
        )
    pid = service.start()
    print(f"{service.name}: started (pid {pid}), log: {service.process.log_file}", flush=True)
    return True


def _wait_ready(service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.healthy():
            print(f"{service.name}: ready on {service.endpoint}", flush=True)
            return
        if service.process.pid() is None:
            raise RuntimeError(
                f"{service.name}: the process exited during start-up. Last log lines "
                f"({service.process.log_file}):\n{service.process.log_tail()}"
            )
        time.sleep(0.5)
    raise RuntimeError(
        f"{service.name}: not ready after {timeout_s:.0f}s; log: {service.process.log_file}\n"
        f"{service.process.log_tail()}"
    )


def _provision_topics(settings: InfraSettings) -> int:
    command = [
        sys.executable,
        "-m",
        "services.admin.topics",
        "--bootstrap-servers",
        settings.kafka_bootstrap_servers,
    ]
    return subprocess.run(command, cwd=settings.repo_root, check=False).returncode


def down(settings: InfraSettings, only: Sequence[str] = ()) -> int:
    if _recorded_mode(settings) == "docker":
        return compose(settings, "down")
    for service in services(settings, only):
        pid = service.process.pid()
        if service.process.stop():
            print(f"{service.name}: stopped (pid {pid})")
        else:
            print(f"{service.name}: not running (no live pid file)")
    return 0


def status(settings: InfraSettings, only: Sequence[str] = ()) -> int:
    if _recorded_mode(settings) == "docker":
        compose(settings, "ps")
    all_healthy = True
    for service in services(settings, only):
        pid = service.process.pid()
        healthy = service.healthy()
        all_healthy &= healthy
        owner = f"pid {pid}" if pid is not None else "not started by infra-up"
        state = "healthy" if healthy else "DOWN"
        print(
            f"{service.name:6} {state:8} {service.endpoint:45} ({owner}) log: {service.process.log_file}"
        )
    return 0 if all_healthy else 1


def reset(settings: InfraSettings, only: Sequence[str] = ()) -> int:
    """Stop everything and delete all data; downloads in the cache stay."""
    if _recorded_mode(settings) == "docker":
        return compose(settings, "down", "--volumes")
    down(settings, only)
    dirs = {"kafka": settings.kafka_dir, "mongo": settings.mongo_dir}
    wiped = [dirs[name] for name in only] if only else [settings.state_dir]
    for directory in wiped:
        shutil.rmtree(directory, ignore_errors=True)
        print(f"wiped {directory} (data, logs, pid files)")
    return 0


def _recorded_mode(settings: InfraSettings) -> str:
    mode_file = settings.state_dir / "mode"
    return mode_file.read_text().strip() if mode_file.exists() else "local"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _print_summary(settings: InfraSettings) -> None:
    print(f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}")
    print(f"MONGODB_URI={settings.mongodb_uri}")
    if _recorded_mode(settings) == "local":
        material = security_material(settings)
        if material.complete:
            print(
                f"SASL_SSL listener: {settings.kafka_sasl_bootstrap_servers} "
                f"(CA {material.ca_file}, passwords in {material.password_file('admin').parent}/)"
            )
        print(f"logs: {broker_process(settings).log_file}")
        print(f"      {mongo_process(settings).log_file}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["up", "down", "status", "reset"])
    parser.add_argument(
        "services",
        nargs="*",
        choices=[[], *SERVICE_NAMES],
        metavar="service",
        help="kafka and/or mongo (default: both)",
    )
    args = parser.parse_args()
    command = args.command
    settings = load_settings()
    actions = {"up": up, "down": down, "status": status, "reset": reset}
    try:
        return actions[command](settings, tuple(args.services))
    except MissingPrerequisite as missing:
        print(f"infra-{command}: {missing}", file=sys.stderr)
        return 2
    except RuntimeError as failure:
        print(f"infra-{command}: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
