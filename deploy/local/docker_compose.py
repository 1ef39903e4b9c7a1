"""The Docker path of `make infra-*`: compose.kafka.yml with the official Kafka and MongoDB images."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from settings import InfraSettings


def docker_engine_answers() -> bool:
    """True only when a Docker engine responds; the docker client alone is not enough."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def compose(settings: InfraSettings, *args: str) -> int:
    command = ["docker", "compose", "-f", str(settings.repo_root / "compose.kafka.yml"), *args]
    print("+ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=settings.repo_root, check=False).returncode


def compose_up(settings: InfraSettings, only: Sequence[str] = ()) -> int:
    # --wait blocks until the healthchecks in compose.kafka.yml pass.
    timeout = str(int(settings.ready_timeout_s))
    return compose(settings, "up", "--detach", "--wait", "--wait-timeout", timeout, *only)
