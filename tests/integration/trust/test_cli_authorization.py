"""The CLI as a principal the trust model's ACLs do not grant a topic or group: it says so, in
one line, instead of taking the topic for missing (`audit tail`: "does not exist", exit 4) or
empty (`dlq list`: nothing listed, exit 0, which an operator reads as "no dead letters"; `groups
lag --max-lag`: no rows, exit 0, an alert that never fires)."""

from collections.abc import AsyncIterator

import pytest

from contracts.topics import TopicCatalogue, TopicName
from services.admin.acls import apply_acls, load_roles, trust_model_acls
from services.admin.topics import delete_topics, ensure_topics
from services.cli.consumer_groups import consumer_lag
from services.cli.dead_letters import read_dead_letters
from services.cli.errors import ExitCode, NotAuthorized
from services.cli.kafka_clients import partitions_of
from services.cli.settings import CliSettings
from services.cli.topics import topic_states
from tests.secured_kafka import ACL_FILE, SecuredKafka

pytestmark = pytest.mark.integration


@pytest.fixture
async def catalogue(
    secured_kafka: SecuredKafka, unique_suffix: str
) -> AsyncIterator[TopicCatalogue]:
    catalogue = TopicCatalogue(prefix=f"cliacl-{unique_suffix}.", partitions=2)
    admin = secured_kafka.settings("admin")
    await ensure_topics(secured_kafka.bootstrap_servers, catalogue.specs(), security=admin)
    bindings = trust_model_acls(catalogue, load_roles(ACL_FILE))
    await apply_acls(secured_kafka.bootstrap_servers, bindings, security=admin)
    yield catalogue
    await delete_topics(
        secured_kafka.bootstrap_servers, [s.name for s in catalogue.specs()], security=admin
    )


def _as(secured_kafka: SecuredKafka, user: str, catalogue: TopicCatalogue) -> CliSettings:
    return CliSettings(_env_file=None, **secured_kafka.fields(user), topic_prefix=catalogue.prefix)


async def test_a_topic_the_principal_may_not_read_is_not_reported_missing(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    client = _as(secured_kafka, "integrator", catalogue)  # an external publisher
    with pytest.raises(NotAuthorized) as refused:
        await read_dead_letters(client, 10)
    assert refused.value.exit_code is ExitCode.FAILURE
    assert "AGENT_RUNTIME_KAFKA_SASL_USERNAME=integrator" in str(refused.value)
    assert catalogue.name(TopicName.DEAD_LETTERS) in str(refused.value)
    with pytest.raises(NotAuthorized):
        await partitions_of(client, catalogue.name(TopicName.AUDIT))  # what `audit tail` reads

    states = {s.catalogue_name: s for s in await topic_states(client)}
    assert (states["commands"].exists, states["commands"].authorized) == (True, True)
    assert (states["turns"].exists, states["turns"].authorized) == (False, False)


async def test_the_operator_reads_the_dead_letters(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    operator = _as(secured_kafka, "operator", catalogue)
    assert await read_dead_letters(operator, 10) == []
    assert all(s.authorized and s.exists for s in await topic_states(operator))


async def test_consumer_groups_the_principal_may_not_describe_are_not_taken_for_none(
    secured_kafka: SecuredKafka, catalogue: TopicCatalogue
) -> None:
    gateway = _as(secured_kafka, "gateway", catalogue)  # no DESCRIBE on the groups
    with pytest.raises(NotAuthorized) as refused:
        await consumer_lag(gateway)
    assert f"{catalogue.prefix}session-commands" in str(refused.value)
    with pytest.raises(NotAuthorized):
        await consumer_lag(gateway, f"{catalogue.prefix}audit")
    # The operators' DESCRIBE on the prefix: no group has joined yet, nothing to show.
    assert await consumer_lag(_as(secured_kafka, "operator", catalogue)) == []
