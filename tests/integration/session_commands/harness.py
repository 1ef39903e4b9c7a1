"""Running session-commands against the real broker and Mongo-compatible server: topics under a
prefix of the test alone, the service in this process (or a subprocess)."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from contracts.base import Message
from contracts.topics import TopicCatalogue, TopicName
from services.session_commands.app import SessionCommandsService, build
from services.session_commands.settings import SessionCommandsSettings
from tests.integration import service_harness

REPO_ROOT = Path(__file__).resolve().parents[3]
TOPICS = (TopicName.COMMANDS, TopicName.TURNS, TopicName.SESSION_EVENTS, TopicName.DEAD_LETTERS)


def provisioned_topics(
    bootstrap: str, prefix: str, partitions: int = 4
) -> AbstractAsyncContextManager[TopicCatalogue]:
    """The service's topics under a prefix of this test alone (equal partition counts, as
    co-partitioning requires); deleted afterwards."""
    catalogue = TopicCatalogue(prefix=prefix, partitions=partitions)
    return service_harness.provisioned_topics(bootstrap, catalogue, TOPICS)


def settings_for(
    bootstrap: str, mongodb_uri: str, database: str, prefix: str, group: str, **overrides: Any
) -> SessionCommandsSettings:
    return SessionCommandsSettings(
        **{
            **service_harness.runtime_settings(bootstrap, prefix),
            "mongodb_uri": mongodb_uri,
            "mongodb_database": database,
            "session_commands_consumer_group": group,
            "log_level": "WARNING",
            **overrides,
        }
    )


def environment_for(settings: SessionCommandsSettings) -> dict[str, str]:
    """The same settings as AGENT_RUNTIME_* variables, for a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    for name, value in settings.model_dump(exclude_none=True).items():
        if name in SessionCommandsSettings.model_fields:
            env[f"AGENT_RUNTIME_{name.upper()}"] = str(getattr(value, "value", value))
    return env


def running(
    settings: SessionCommandsSettings, *, run_expiry_job: bool = False
) -> AbstractAsyncContextManager[SessionCommandsService]:
    service = build(settings, configure_logs=False, run_expiry_job=run_expiry_job)
    return service_harness.started(service)


class ServiceProcess:
    """`python -m services.session_commands` as a subprocess (for crash tests)."""

    def __init__(self, settings: SessionCommandsSettings, **extra_env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.session_commands"],
            cwd=REPO_ROOT,
            env={**environment_for(settings), **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    async def wait_exit(self, within: float) -> int:
        deadline = asyncio.get_running_loop().time() + within
        while (code := self.process.poll()) is None:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"service did not exit within {within}s")
            await asyncio.sleep(0.05)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-4000:]


def type_names(messages: Iterable[Message]) -> list[str]:
    return [type(m).__name__ for m in messages]
