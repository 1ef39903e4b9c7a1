"""Fail with one line naming what to install, instead of a stack trace from deep inside."""

from __future__ import annotations

import shutil
import subprocess

# tool -> (why we need it, what to install on Debian/Ubuntu)
_TOOLS = {
    "java": (
        "runs Kafka and mongo-java-server",
        "a JDK 17+ (apt-get install openjdk-17-jdk-headless)",
    ),
    "mvn": ("resolves their jars from Maven Central", "Apache Maven 3.6+ (apt-get install maven)"),
}


class MissingPrerequisite(RuntimeError):
    pass


def require_tools() -> None:
    for tool, (why, install) in _TOOLS.items():
        if shutil.which(tool) is None:
            raise MissingPrerequisite(f"'{tool}' not found on PATH ({why}): install {install}")
    _require_java_17()


def _require_java_17() -> None:
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' on stderr.
    out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
    quoted = out.split('"')[1] if '"' in out else ""
    major = quoted.split(".")[0]
    if major.isdigit() and int(major) < 17:
        raise MissingPrerequisite(f"java {quoted} is too old: Kafka 4 needs a JDK 17+")
