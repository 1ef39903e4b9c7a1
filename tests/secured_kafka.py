"""The broker's SASL_SSL listener for the trust tests: its address, CA and SCRAM users.

Which broker: the local one from deploy/local (what a fresh CI machine starts, with the listener
from the beginning) when its security material is there and every user of it logs in (a broker
formatted before a service's user was added does not know that user); otherwise a
dedicated broker on free ports with a state directory of its own, started for the session and
stopped at its end - never a restart of a shared broker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.runtime.kafka_access import KafkaAccessRefused, check_kafka_access
from services.runtime.kafka_security import KafkaSecuritySettings

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.py"
ACL_FILE = REPO_ROOT / "deploy" / "kafka" / "acls.toml"


@dataclass(frozen=True)
class SecuredKafka:
    bootstrap_servers: str  # the SASL_SSL listener
    security_dir: Path  # deploy/local/kafka_security.py's layout

    @property
    def ca_file(self) -> Path:
        return self.security_dir / "ca.pem"

    def password_file(self, user: str) -> Path:
        return self.security_dir / "users" / f"{user}.password"

    def env(self, user: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
        """The AGENT_RUNTIME_KAFKA_* variables of a process that logs in as `user`."""
        return {
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "AGENT_RUNTIME_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "AGENT_RUNTIME_KAFKA_SASL_MECHANISM": mechanism,
            "AGENT_RUNTIME_KAFKA_SASL_USERNAME": user,
            "AGENT_RUNTIME_KAFKA_SASL_PASSWORD_FILE": str(self.password_file(user)),
            "AGENT_RUNTIME_KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def fields(self, user: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, Any]:
        """The same as settings fields (for a settings class of a service or the CLI)."""
        return {
            "kafka_bootstrap_servers": self.bootstrap_servers,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": user,
            "kafka_sasl_password_file": self.password_file(user),
            "kafka_ssl_cafile": self.ca_file,
        }

    def settings(self, user: str, mechanism: str = "SCRAM-SHA-512") -> KafkaSecuritySettings:
        return KafkaSecuritySettings(**self.fields(user, mechanism))


def acl_users() -> list[str]:
    """The admin and every SCRAM user deploy/kafka/acls.toml grants something to."""
    roles = tomllib.loads((REPO_ROOT / "deploy" / "kafka" / "acls.toml").read_text())["roles"]
    names = {p.removeprefix("User:") for principals in roles.values() for p in principals}
    return ["admin", *sorted(names)]


def local_secured_kafka() -> SecuredKafka | None:
    """The deploy/local broker's listener, when it has one and each of its users logs in."""
    state_dir = Path(os.environ.get("INFRA_STATE_DIR", REPO_ROOT / ".run" / "infra"))
    port = os.environ.get("KAFKA_SASL_PORT", "9094")
    candidate = SecuredKafka(f"127.0.0.1:{port}", state_dir / "kafka" / "security")
    if not all(map(Path.exists, map(candidate.password_file, acl_users()))):
        return None  # made before a user was added: `make infra-reset` gives it every user
    if not _port_open(int(port)):
        return None
    users = acl_users()

    async def every_user_logs_in() -> None:
        for user in users:
            await asyncio.wait_for(check_kafka_access(candidate.settings(user)), 20)

    try:
        asyncio.run(every_user_logs_in())
    except (KafkaAccessRefused, TimeoutError):
        return None
    return candidate


def dedicated_secured_kafka(state_dir: Path) -> Iterator[SecuredKafka]:
    plain, controller, sasl = _free_ports(3)
    env = {
        **os.environ,
        "INFRA_MODE": "local",
        "INFRA_STATE_DIR": str(state_dir),
        "KAFKA_PORT": str(plain),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_SASL_PORT": str(sasl),
    }

    def infra(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(INFRA_SCRIPT), *args, "kafka"]
        return subprocess.run(
            command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
        )

    started = infra("up")
    try:
        if started.returncode != 0:
            pytest.fail(
                f"could not start a dedicated Kafka with a SASL_SSL listener:\n"
                f"{started.stdout}\n{started.stderr}",
                pytrace=False,
            )
        yield SecuredKafka(f"127.0.0.1:{sasl}", state_dir / "kafka" / "security")
    finally:
        infra("down")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
