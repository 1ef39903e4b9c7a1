"""On the real broker, a service's consumer group and client id are its name under the prefix."""

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.llm_invocation.settings import LLMInvocationSettings
from tests.integration import service_harness
from tests.integration.llm_invocation.harness import provisioned_topics, running

pytestmark = pytest.mark.integration


async def _members(bootstrap: str, group: str, timeout_s: float = 30.0) -> list[Any]:
    """The group's members once it has any (joining takes a rebalance), else []."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            (response,) = await admin.describe_consumer_groups([group])
            members: list[Any] = list(response.groups[0][5])
            if members or asyncio.get_running_loop().time() > deadline:
                return members
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def test_group_and_client_id_derive_from_the_topic_prefix(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    prefix = f"t-{unique_suffix}."
    settings = LLMInvocationSettings(
        **service_harness.runtime_settings(kafka_bootstrap_servers, prefix),
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        llm_provider="offline",
    )
    assert settings.llm_consumer_group == f"{prefix}llm-invocation"

    async with provisioned_topics(kafka_bootstrap_servers, prefix), running(settings):
        members = await _members(kafka_bootstrap_servers, f"{prefix}llm-invocation")

    assert [member[1] for member in members] == [f"{prefix}llm-invocation"]
