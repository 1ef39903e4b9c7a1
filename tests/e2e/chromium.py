"""Debian's chromium for the console's real-browser test, installed by the test session itself
when missing (CI starts on a fresh machine as root). Never `playwright install`: browser
downloads are not possible here, and the distribution's build is the one CI can get."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

import pytest

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _install() -> str:
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "not root, cannot run apt-get (run: sudo apt-get install -y chromium)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr[-2000:]}"
    return ""


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        why = _install()
        if why or not CHROMIUM.exists():
            pytest.fail(f"the console test needs Debian's chromium at {CHROMIUM}: {why}")
    return CHROMIUM
