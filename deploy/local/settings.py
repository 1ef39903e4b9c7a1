"""Where the local infrastructure lives and which ports it uses, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@dataclass(frozen=True)
class InfraSettings:
    """Every knob of `make infra-*`; defaults match what the test harness and services expect."""

    repo_root: Path
    cache_dir: Path  # downloads (Maven repository, resolved jars): survives infra-reset
    state_dir: Path  # data, logs, pid files: wiped by infra-reset
    host: str
    kafka_port: int
    kafka_controller_port: int
    kafka_sasl_port: int  # the SASL_SSL listener (kafka_security.py)
    mongo_port: int
    kafka_version: str
    mongo_java_server_version: str
    kafka_heap: str
    mongo_heap: str
    ready_timeout_s: float

    @property
    def kafka_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def kafka_sasl_bootstrap_servers(self) -> str:
        return f"{self.host}:{self.kafka_sasl_port}"

    @property
    def mongodb_uri(self) -> str:
        return f"mongodb://{self.host}:{self.mongo_port}/?directConnection=true"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def mongo_dir(self) -> Path:
        return self.state_dir / "mongo"

    @property
    def maven_repository(self) -> Path:
        return self.cache_dir / "maven-repository"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{self.kafka_version}" / "libs"

    @property
    def mongo_libs(self) -> Path:
        return self.cache_dir / f"mongo-java-server-{self.mongo_java_server_version}" / "libs"

    @property
    def deploy_dir(self) -> Path:
        return self.repo_root / "deploy" / "local"


def load_settings() -> InfraSettings:
    root = REPO_ROOT
    return InfraSettings(
        repo_root=root,
        cache_dir=Path(os.environ.get("INFRA_CACHE_DIR", root / ".cache")).resolve(),
        state_dir=Path(os.environ.get("INFRA_STATE_DIR", root / ".run" / "infra")).resolve(),
        host="127.0.0.1",
        kafka_port=_int_env("KAFKA_PORT", 9092),
        kafka_controller_port=_int_env("KAFKA_CONTROLLER_PORT", 9093),
        kafka_sasl_port=_int_env("KAFKA_SASL_PORT", 9094),
        mongo_port=_int_env("MONGO_PORT", 27017),
        kafka_version=os.environ.get("KAFKA_VERSION", "4.3.1"),
        mongo_java_server_version=os.environ.get("MONGO_JAVA_SERVER_VERSION", "1.47.0"),
        kafka_heap=os.environ.get("KAFKA_HEAP", "512m"),
        mongo_heap=os.environ.get("MONGO_HEAP", "512m"),
        ready_timeout_s=float(os.environ.get("INFRA_READY_TIMEOUT", "120")),
    )
