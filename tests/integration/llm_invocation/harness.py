"""Running llm-invocation in this process against the real broker and Mongo-compatible server:
its topics under a prefix of one test, its settings, the service started and watching."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from contracts.topics import TopicCatalogue, TopicName
from services.llm_invocation.app import LLMInvocationService, build
from services.llm_invocation.settings import LLMInvocationSettings
from tests.integration import service_harness

TOPICS = (
    TopicName.LLM_REQUESTS,
    TopicName.LLM_STREAM,
    TopicName.LLM_RESULTS,
    TopicName.SESSION_EVENTS,
    TopicName.DEAD_LETTERS,
)


def provisioned_topics(bootstrap: str, prefix: str) -> AbstractAsyncContextManager[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=prefix, partitions=4)
    return service_harness.provisioned_topics(bootstrap, catalogue, TOPICS)


def settings_for(
    bootstrap: str, mongodb_uri: str, database: str, prefix: str, group: str, **overrides: object
) -> LLMInvocationSettings:
    return LLMInvocationSettings(
        **{
            **service_harness.runtime_settings(bootstrap, prefix),
            "mongodb_uri": mongodb_uri,
            "mongodb_database": database,
            "llm_consumer_group": group,
            "llm_provider": "offline",  # unless a test says otherwise, whatever the environment
            **overrides,
        }
    )


@asynccontextmanager
async def running(settings: LLMInvocationSettings) -> AsyncIterator[LLMInvocationService]:
    async with service_harness.started(build(settings, configure_logs=False)) as service:
        if service.watcher is not None:
            await service.watcher.ready()
        yield service
