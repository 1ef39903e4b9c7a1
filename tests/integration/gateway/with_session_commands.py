"""An in-process gateway over session-commands running in this process, on topics of the test
alone: enough for every write the gateway decides with session-commands (no turn runs), and
for its live streams (`llm-stream` exists, empty)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from contracts.topics import TopicCatalogue, TopicName
from tests.integration import service_harness
from tests.integration.gateway.in_process import InProcessGateway, in_process_gateway
from tests.integration.session_commands.harness import TOPICS, running, settings_for


@asynccontextmanager
async def gateway_over_session_commands(
    bootstrap: str, mongodb_uri: str, database: str, name: str, **gateway_settings: Any
) -> AsyncIterator[InProcessGateway]:
    prefix = f"{name}."
    settings = settings_for(bootstrap, mongodb_uri, database, prefix, name)
    deployment: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "mongodb_uri": mongodb_uri,
        "mongodb_database": database,
        "topic_prefix": prefix,
        **gateway_settings,
    }
    async with (
        service_harness.provisioned_topics(
            bootstrap,
            TopicCatalogue(prefix=prefix, partitions=4),
            (*TOPICS, TopicName.LLM_STREAM),
        ),
        running(settings),
        in_process_gateway(**deployment) as gateway,
    ):
        await gateway.until_ready()
        yield gateway
