"""A Kafka broker of one test's own: deploy/local's launcher on free ports and its own data
directory, for tests that stop and start a broker (the shared one is never touched).

Every listener gets a port of its own — client, controller and the SASL_SSL listener that the
local broker always opens — so it never collides with the test session's broker.
"""

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.py"


class DedicatedKafka:
    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        client, controller, sasl = free_ports(3)
        self.port = port if port is not None else client
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "INFRA_MODE": "local",
            "INFRA_STATE_DIR": str(state_dir),
            "INFRA_CACHE_DIR": str(REPO_ROOT / ".cache"),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(controller),
            "KAFKA_SASL_PORT": str(sasl),
            "KAFKA_HEAP": "256m",
        }

    def up(self) -> None:
        self._infra("up")

    def down(self) -> None:
        self._infra("down")

    def _infra(self, command: str) -> None:
        result = subprocess.run(
            [sys.executable, str(INFRA_SCRIPT), command, "kafka"],
            cwd=REPO_ROOT,
            env=self._env,
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        assert result.returncode == 0, (
            f"infra.py {command} kafka:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
