"""200 concurrent sessions x 5 turns through the four services: all complete, order intact."""

import pytest

from tests.e2e.conftest import Pipeline
from tests.e2e.conversations import (
    EventCollector,
    commands_for,
    history_problems,
    plan,
    publish,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SESSIONS = 200
TURNS = 5


async def test_concurrent_sessions_complete_in_order(
    pipeline: Pipeline, unique_suffix: str
) -> None:
    settings = pipeline.settings
    runs = plan(f"load-{unique_suffix}", SESSIONS, TURNS)
    commands = [c for run in runs for c in commands_for(run, settings.tenant_id)]
    async with EventCollector(settings.kafka_bootstrap_servers, pipeline.catalogue, runs) as events:
        await publish(settings.kafka_bootstrap_servers, pipeline.catalogue, commands)
        seconds = await events.until_all_turns_complete(runs, TURNS, timeout_s=300)
    problems = [p for run in runs for p in run.problems()]
    assert not problems, problems[:10]
    stored = await history_problems(
        settings.mongodb_uri, settings.mongodb_database, runs, settings.tenant_id
    )
    assert not stored, stored[:10]
    print(f"{SESSIONS * TURNS} turns in {seconds:.1f}s ({SESSIONS * TURNS / seconds:.1f} turns/s)")
