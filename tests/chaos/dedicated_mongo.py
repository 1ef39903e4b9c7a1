"""A mongo-java-server of one test, on a free port, that the test may kill -9 and restart.

Never the shared server: it is started with deploy/local's launcher (`infra.py up mongo`,
`MONGO_PORT` and `INFRA_STATE_DIR` of its own, always as a local JVM so that kill -9 means
what it says) and stopped by its own pid file only.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import INFRA_SCRIPT, REPO_ROOT


class DedicatedMongo:
    def __init__(self, state_dir: Path, port: int) -> None:
        self.port = port
        self._state_dir = state_dir
        self._env = {
            **os.environ,
            "MONGO_PORT": str(port),
            "INFRA_STATE_DIR": str(state_dir),
            "INFRA_MODE": "local",
            "INFRA_CACHE_DIR": os.environ.get("INFRA_CACHE_DIR", str(REPO_ROOT / ".cache")),
        }

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        """Start (or restart on the same data file) and wait until it answers."""
        self._infra("up")

    def kill(self) -> None:
        """kill -9: no shutdown, whatever the clients were doing."""
        pid = int((self._state_dir / "mongo" / "mongo.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self._infra("down")

    def _infra(self, command: str) -> None:
        done = subprocess.run(
            [sys.executable, str(INFRA_SCRIPT), command, "mongo"],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"infra.py {command} mongo failed:\n{done.stdout}\n{done.stderr}")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
