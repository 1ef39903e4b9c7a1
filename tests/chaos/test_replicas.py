"""Two instances of every service share each consumer group and lose, duplicate or reorder nothing."""

import pytest

from tests.e2e.conftest import Pipeline
from tests.e2e.conversations import EventCollector, commands_for, history_problems, plan, publish

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


async def test_two_instances_per_service(replicated_pipeline: Pipeline, unique_suffix: str) -> None:
    settings = replicated_pipeline.settings
    runs = plan(f"rep-{unique_suffix}", 12, 2)
    commands = [c for run in runs for c in commands_for(run, settings.tenant_id)]
    async with EventCollector(
        settings.kafka_bootstrap_servers, replicated_pipeline.catalogue, runs
    ) as events:
        await publish(settings.kafka_bootstrap_servers, replicated_pipeline.catalogue, commands)
        await events.until_all_turns_complete(runs, 2, timeout_s=120)
    assert not [p for run in runs for p in run.problems()]
    assert not await history_problems(
        settings.mongodb_uri, settings.mongodb_database, runs, settings.tenant_id
    )
    assert len(replicated_pipeline.stack.services) == 10  # five consumers (tool-invocation too) x 2
