"""Resolve the Kafka and mongo-java-server classpaths from Maven Central, once, into the cache."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from maven_progress import progress_line
from settings import InfraSettings

# Written last: a libs/ folder without it is a half-finished download and is redone.
_COMPLETE_MARKER = ".resolved"


def resolve_kafka(settings: InfraSettings) -> Path:
    return _resolve(
        settings,
        pom=settings.deploy_dir / "kafka.pom.xml",
        version_property=f"-Dkafka.version={settings.kafka_version}",
        libs=settings.kafka_libs,
        what=f"Apache Kafka {settings.kafka_version}",
    )


def resolve_mongo(settings: InfraSettings) -> Path:
    return _resolve(
        settings,
        pom=settings.deploy_dir / "mongo.pom.xml",
        version_property=f"-Dmongo-java-server.version={settings.mongo_java_server_version}",
        libs=settings.mongo_libs,
        what=f"mongo-java-server {settings.mongo_java_server_version}",
    )


def _resolve(
    settings: InfraSettings, *, pom: Path, version_property: str, libs: Path, what: str
) -> Path:
    if (libs / _COMPLETE_MARKER).exists():
        return libs
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    print(f"resolving {what} from Maven Central into {libs} ...", flush=True)
    started = time.monotonic()
    command = [
        "mvn",
        "--batch-mode",  # no colours, no in-place counters: one "Downloaded from" line per file
        "--file",
        str(pom),
        # Keep the Maven repository inside the project cache: a fresh clone resolves everything,
        # and deleting .cache/ really starts from nothing.
        f"-Dmaven.repo.local={settings.maven_repository}",
        version_property,
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    # Streamed: a line per downloaded jar as it arrives, Maven's last lines if it fails.
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as maven:
        assert maven.stdout is not None
        for line in maven.stdout:
            tail.append(line)
            step = progress_line(line)
            if step is not None:
                print(step, flush=True)
    if maven.returncode != 0:
        sys.stderr.write("".join(tail))
        raise RuntimeError(f"Maven could not resolve {what} (command: {' '.join(command)})")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / _COMPLETE_MARKER).write_text(what + "\n")
    jars = len(list(libs.glob("*.jar")))
    print(f"resolved {what}: {jars} jars in {time.monotonic() - started:.1f}s", flush=True)
    return libs
