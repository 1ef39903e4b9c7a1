"""kill -9 each service in turn, restart it, and lose nothing.

`make test` runs the reduced size; `make chaos` (marker `slow`) runs 500 turns.
"""

import pytest

from tests.e2e.conftest import Pipeline
from tests.e2e.conversations import (
    EventCollector,
    commands_for,
    history_problems,
    plan,
    publish,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


async def _kill_each_service_while_running(
    pipeline: Pipeline, run_id: str, sessions: int, turns: int
) -> None:
    settings = pipeline.settings
    stack = pipeline.stack
    runs = plan(run_id, sessions, turns)
    commands = [c for run in runs for c in commands_for(run, settings.tenant_id)]
    total = sessions * turns
    async with EventCollector(settings.kafka_bootstrap_servers, pipeline.catalogue, runs) as events:
        await publish(settings.kafka_bootstrap_servers, pipeline.catalogue, commands)
        for name in stack.services:
            # Let the pipeline make progress, then pull the plug on one service mid-stream.
            target = min(total, sum(r.completed_turns for r in runs) + max(total // 10, 1))
            while sum(r.completed_turns for r in runs) < target:
                await events.poll()
            stack.kill(name)
            stack.start(name)
            await stack.wait_ready(timeout_s=90.0, names=[name])
        await events.until_all_turns_complete(runs, turns, timeout_s=600)
    problems = [p for run in runs for p in run.problems()]
    assert not problems, problems[:10]
    stored = await history_problems(
        settings.mongodb_uri, settings.mongodb_database, runs, settings.tenant_id
    )
    assert not stored, stored[:10]


async def test_kill_and_restart_each_service_reduced(
    pipeline: Pipeline, unique_suffix: str
) -> None:
    await _kill_each_service_while_running(pipeline, f"chaos-{unique_suffix}", sessions=20, turns=5)


@pytest.mark.slow
async def test_kill_and_restart_each_service_500_turns(
    pipeline: Pipeline, unique_suffix: str
) -> None:
    await _kill_each_service_while_running(
        pipeline, f"chaos-{unique_suffix}", sessions=100, turns=5
    )
