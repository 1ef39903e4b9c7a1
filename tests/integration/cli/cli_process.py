"""`agent-runtime` as a script runs it: a subprocess, stdout not a terminal, a clean environment."""

import json
import os
import subprocess
import sys
from typing import Any


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
        check=False,
    )


def ndjson(stdout: str) -> list[dict[str, Any]]:
    """Every line one JSON object (and nothing else on stdout)."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert all(isinstance(line, dict) for line in lines), stdout
    return lines
