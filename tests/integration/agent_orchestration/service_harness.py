"""Running agent-orchestration in this process against the real broker: its topics, its
settings, and how many records its group is done with."""

from contextlib import AbstractAsyncContextManager

from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import TopicCatalogue, TopicName
from services.agent_orchestration.app import OrchestrationService, build
from services.agent_orchestration.settings import OrchestrationSettings
from tests.integration import service_harness

TOPICS = (
    TopicName.SESSION_EVENTS,
    TopicName.LLM_RESULTS,
    TopicName.LLM_REQUESTS,
    TopicName.TURNS,
    TopicName.DEAD_LETTERS,
)


def provisioned_topics(bootstrap: str, prefix: str) -> AbstractAsyncContextManager[TopicCatalogue]:
    """The service's topics under a prefix of this test alone; deleted afterwards."""
    catalogue = TopicCatalogue(prefix=prefix, partitions=4)
    return service_harness.provisioned_topics(bootstrap, catalogue, TOPICS)


def settings_for(
    bootstrap: str, prefix: str, group: str, **overrides: object
) -> OrchestrationSettings:
    return OrchestrationSettings(
        **{
            **service_harness.runtime_settings(bootstrap, prefix),
            "orchestration_consumer_group": group,
            **overrides,
        }
    )


def running(settings: OrchestrationSettings) -> AbstractAsyncContextManager[OrchestrationService]:
    return service_harness.started(build(settings, configure_logs=False))


async def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """The sum of the group's committed offsets on `topic` (= records it is done with)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def wait_for_commits(
    bootstrap: str, group: str, topic: str, total: int, within: float = 20.0
) -> None:
    async def committed() -> bool:
        return await committed_total(bootstrap, group, topic) >= total

    await service_harness.eventually(
        committed, within, f"{group} to commit {total} records on {topic}", every=0.2
    )
