"""mongo-java-server with the H2 (MVStore) backend, persisting to one file, on loopback."""

from __future__ import annotations

from pathlib import Path

from processes import ManagedProcess
from settings import InfraSettings


def mongo_process(settings: InfraSettings) -> ManagedProcess:
    return ManagedProcess(
        name="mongo",
        pid_file=settings.mongo_dir / "mongo.pid",
        log_file=settings.mongo_dir / "logs" / "server.log",
        marker=str(settings.mongo_dir / "data.mv"),
    )


def start_mongo(settings: InfraSettings, libs: Path) -> int:
    settings.mongo_dir.mkdir(parents=True, exist_ok=True)
    command = [
        "java",
        f"-Xmx{settings.mongo_heap}",
        "-XX:+UseG1GC",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-cp",
        f"{libs}/*",
        # Single-file source mode: compiled in memory at start, no build step to cache.
        str(settings.deploy_dir / "MongoLauncher.java"),
        settings.host,
        str(settings.mongo_port),
        str(settings.mongo_dir / "data.mv"),
    ]
    return mongo_process(settings).start(command, cwd=settings.mongo_dir)


def mongo_is_healthy(uri: str, timeout_s: float = 3.0) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    timeout_ms = int(timeout_s * 1000)
    client: MongoClient[dict[str, object]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        return client.admin.command("ping").get("ok") == 1.0
    except PyMongoError:
        return False
    finally:
        client.close()
