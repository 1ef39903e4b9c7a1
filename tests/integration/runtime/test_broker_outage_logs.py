"""A broker outage, for real: a consumer process logs a handful of lines, not thousands.

Starts a broker of its own (deploy/local, on free ports, its own data directory: the shared
broker is never touched), runs a `keyed_worker` against it with JSON logs, stops the broker for
~12 s, starts it again, and reads the worker's log.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.runtime.harness import REPO_ROOT, Journal, eventually
from tests.support.dedicated_kafka import DedicatedKafka

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.slow]

TOPIC = "agent-runtime.commands"  # provisioned by `infra.py up` with the catalogue


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DedicatedKafka]:
    dedicated = DedicatedKafka(tmp_path / "infra")
    dedicated.up()
    try:
        yield dedicated
    finally:
        dedicated.down()


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a traceback line, if any
    return lines


def states(path: Path, state: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(path) if line.get("broker_state") == state]


def outages_started(path: Path) -> list[dict[str, Any]]:
    """The first error of each outage (the periodic summaries carry the state too)."""
    return [
        line
        for line in states(path, "unreachable")
        if not line["message"].startswith("broker unreachable for")
    ]


def start_worker(bootstrap: str, journal: Path, group: str, log: Path) -> "subprocess.Popen[bytes]":
    env = {
        **os.environ,
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PYTHONPATH": str(REPO_ROOT),
        "WORKER_JSON_LOGS": "1",
    }
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.runtime.keyed_worker",
                str(journal),
                group,
                TOPIC,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )


async def test_a_12_s_outage_logs_one_line_per_state_change(
    broker: DedicatedKafka, tmp_path: Path, unique_suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = Journal(tmp_path / "journal")
    log = tmp_path / "worker.log"
    worker = start_worker(broker.bootstrap, journal.path, f"outage-{unique_suffix}", log)
    try:
        await eventually(lambda: bool(journal.of("ready")), 60, "the worker joined its group")
        # A fresh broker may answer "coordinator not available" for a moment: let such a blip
        # end (its own "reachable again" line) before the outage under test begins.
        await eventually(
            lambda: len(states(log, "reachable")) >= len(outages_started(log)),
            30,
            "no outage in progress",
        )
        before = len(log_lines(log))
        recoveries = len(states(log, "reachable"))
        broker.down()
        await eventually(
            lambda: any(
                line["message"].startswith("broker unreachable for")
                for line in log_lines(log)[before:]
            ),
            40,
            "a summary line",
        )
        broker.up()
        await eventually(
            lambda: len(states(log, "reachable")) > recoveries, 90, "the recovery line"
        )
    finally:
        worker.kill()
        worker.wait(10)

    during = log_lines(log)[before:]
    loud = [line for line in during if line["level"] in ("WARNING", "ERROR")]
    (recovered,) = [line for line in during if line.get("broker_state") == "reachable"]
    suppressed = int(recovered["message"].split("(")[1].split()[0])
    summaries = [line for line in loud if line["message"].startswith("broker unreachable for")]
    with capsys.disabled():  # `make chaos` shows the figure
        print(
            f"\nbroker down ~{recovered['unreachable_s']} s: {suppressed} connection errors from "
            f"aiokafka, {len(loud)} WARNING/ERROR lines logged, then: {recovered['message']}"
        )
    # The first connection error as it happened, then summaries only, then the recovery.
    (first,) = [line for line in loud if line in outages_started(log)]
    assert first["logger"].startswith("aiokafka"), first
    assert summaries, loud
    assert all(line.get("broker_state") == "unreachable" for line in summaries)
    # One line per state change plus one per 10 s, and what is not a connection error
    # (aiokafka marking its coordinator dead, a failed heartbeat): a handful, where every
    # failed attempt used to be a line.
    assert len(loud) <= 15, [line["message"][:100] for line in loud]
    assert suppressed > 10 * len(loud)
