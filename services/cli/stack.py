"""Start, watch and stop the services as separate processes (make up / down / run).

Each service runs as `python -m services.<package>`; its pid goes to `<run_dir>/pids/`, its
output to `<run_dir>/logs/`. Stopping goes by pid file only, and only when that pid still runs
the service's module, so a recycled pid is never signalled.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    module: str
    colour: str
    port_variable: str = "AGENT_RUNTIME_HEALTH_PORT"
    """The setting that receives the port `wait_ready` probes (the gateway's is its API)."""

    def replica(self, index: int) -> "ServiceSpec":
        """The same service under the name `<name>-<index>`: one more instance in its group."""
        return ServiceSpec(f"{self.name}-{index}", self.module, self.colour)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("session-commands", "services.session_commands", "cyan"),
    ServiceSpec("agent-orchestration", "services.agent_orchestration", "magenta"),
    ServiceSpec("llm-invocation", "services.llm_invocation", "yellow"),
    ServiceSpec("audit", "services.audit", "blue"),
    ServiceSpec("tool-invocation", "services.tool_invocation", "red"),
)

GATEWAY = ServiceSpec("gateway", "services.gateway", "green", "AGENT_RUNTIME_GATEWAY_PORT")
"""The HTTP API: not one of the four pipeline services; `make run` / `up` start it too."""


def replicated(specs: Sequence[ServiceSpec], count: int) -> tuple[ServiceSpec, ...]:
    """`count` instances of each service (`session-commands-1`, `session-commands-2`, …)."""
    return tuple(spec.replica(index) for spec in specs for index in range(1, count + 1))


class ServiceStack:
    def __init__(
        self,
        run_dir: Path,
        env: Mapping[str, str | None] | None = None,
        services: Sequence[ServiceSpec] = SERVICES,
        base_health_port: int = 8081,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.env = dict(env or {})
        self.services = {spec.name: spec for spec in services}
        self.ports = (
            dict(ports)
            if ports
            else {spec.name: base_health_port + i for i, spec in enumerate(services)}
        )
        (run_dir / "pids").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def add(self, spec: ServiceSpec, port: int) -> None:
        """One more instance (scale-out in tests); `start(spec.name)` starts it."""
        if spec.name in self.services:
            raise ValueError(f"{spec.name} is already part of this stack")
        self.services[spec.name] = spec
        self.ports[spec.name] = port

    def log_path(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The service's pid if its pid file names a live process running its module."""
        try:
            pid = int(self._pid_path(name).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        return pid if self.services[name].module.encode() in cmdline else None

    def start(self, name: str) -> int:
        existing = self.pid(name)
        if existing is not None:
            return existing
        spec = self.services[name]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for key, value in self.env.items():  # None removes an inherited variable
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        env[spec.port_variable] = str(self.ports[name])
        # Stable per instance across restarts (like a StatefulSet pod name).
        env["AGENT_RUNTIME_INSTANCE_NAME"] = name
        with self.log_path(name).open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal must not reach it directly
            )
        self._pid_path(name).write_text(str(process.pid))
        return process.pid

    def start_all(self) -> None:
        for name in self.services:
            self.start(name)

    def signal(self, name: str, sig: signal.Signals) -> bool:
        pid = self.pid(name)
        if pid is None:
            return False
        os.kill(pid, sig)
        return True

    def kill(self, name: str) -> None:
        """kill -9, for chaos tests: no drain, no commit."""
        pid = self.pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _reap(pid, 10.0)
        self._pid_path(name).unlink(missing_ok=True)

    def stop(self, name: str, timeout_s: float = 30.0) -> None:
        """SIGTERM (drain and commit), SIGKILL only if it overstays `timeout_s`."""
        pid = self.pid(name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not _reap(pid, timeout_s):
                os.kill(pid, signal.SIGKILL)
                _reap(pid, 10.0)
        self._pid_path(name).unlink(missing_ok=True)

    def stop_all(self, timeout_s: float = 30.0) -> None:
        for name in self.services:
            self.signal(name, signal.SIGTERM)
        for name in self.services:
            self.stop(name, timeout_s)

    def status(self) -> dict[str, int | None]:
        return {name: self.pid(name) for name in self.services}

    async def wait_ready(self, timeout_s: float = 90.0, names: Sequence[str] | None = None) -> None:
        """Until every service's readiness probe answers 200; names the laggards on timeout."""
        pending = set(names or self.services)
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    if self.pid(name) is None:
                        raise RuntimeError(f"{name} exited; see {self.log_path(name)}")
                    try:
                        url = f"http://127.0.0.1:{self.ports[name]}/health/ready"
                        if (await client.get(url)).status_code == 200:
                            pending.discard(name)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    logs = ", ".join(str(self.log_path(n)) for n in sorted(pending))
                    raise TimeoutError(
                        f"not ready after {timeout_s:.0f}s: {sorted(pending)}; see {logs}"
                    )
                if pending:
                    await asyncio.sleep(0.25)


def _reap(pid: int, timeout_s: float) -> bool:
    """Wait for `pid` to exit (reaping it if it is our child)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return True
        except ChildProcessError:  # not our child: poll for existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.05)
    return False
