"""Processes that we start, remember by pid file, and stop by that pid only.

A pid file alone can lie after a reboot (the number gets reused), so a pid counts as ours only
while its command line still contains the marker we started it with.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid_file: Path
    log_file: Path
    marker: str  # a string unique to our command line, e.g. the config file path

    def pid(self) -> int | None:
        """The pid of our running process, or None (stale pid files are removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        command_line = _cmdline(pid)
        if command_line is not None and self.marker in command_line:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: list[str], *, cwd: Path) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} starting: {' '.join(command)}\n".encode())
            log.flush()
            # A new session: the process outlives `make` and the shell, and a Ctrl-C in the
            # terminal that started it does not reach it.
            process = subprocess.Popen(
                command,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        return process.pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM, wait, then SIGKILL. Returns False when nothing of ours was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10.0)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:  # a zombie: exited, not yet reaped
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _cmdline(pid) is None:
            return True
        time.sleep(0.1)
    return _cmdline(pid) is None
