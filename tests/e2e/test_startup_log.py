"""A service's start-up log at INFO: one ready line, no assignment dump, one set of JSON keys."""

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from services.cli.stack import SERVICES
from tests.e2e.conftest import running_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SESSION_COMMANDS = next(spec for spec in SERVICES if spec.name == "session-commands")
BASE_KEYS = {"ts", "level", "service", "logger", "message", "session_id", "turn_id", "trace_id"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _ready_line(path: Path, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        lines = _lines(path)
        if any(" ready: " in line["message"] for line in lines) or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.1)


async def test_session_commands_says_once_that_it_is_ready_and_dumps_no_assignment(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
) -> None:
    async with running_pipeline(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        unique_suffix,
        tmp_path,
        services=(SESSION_COMMANDS,),
        extra_env={"AGENT_RUNTIME_LOG_LEVEL": "INFO"},
    ) as pipeline:
        log_path = pipeline.stack.log_path(SESSION_COMMANDS.name)
        lines = await _ready_line(log_path)
        text = log_path.read_text()

    assert "TopicPartition" not in text
    ready = [line for line in lines if " ready: " in line["message"]]
    assert [line["message"] for line in ready] == [
        "session-commands ready: 12 partitions of commands, turns"
    ]
    assert ready[0]["level"] == "INFO"
    assert all(line["level"] != "DEBUG" for line in lines)
    # The same keys in every line, whichever logger wrote it (null when not known).
    for line in lines:
        assert line.keys() >= BASE_KEYS, line
        assert line["service"] == "session-commands"
