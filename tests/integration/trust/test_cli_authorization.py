"""The CLI as a principal the trust model's ACLs do not grant a topic or group: it says so, in
one line, instead of taking the topic for missing (`audit tail`: "does not exist", exit 4) or
empty (`dlq list`: nothing listed, exit 0, which an operator reads as "no dead letters"; `groups
lag --max-lag`: no rows, exit 0, an alert that never fires)."""

import pytest

from contracts.commands import CreateSession
from contracts.topics import TopicCatalogue, TopicName
from services.cli.consumer_groups import consumer_lag
from services.cli.dead_letters import read_dead_letters
from services.cli.errors import ExitCode, NotAuthorized
from services.cli.kafka_clients import partitions_of
from services.cli.send import publish_command
from services.cli.settings import CliSettings
from services.cli.topics import topic_states
from tests.secured_kafka import SecuredKafka

pytestmark = pytest.mark.integration


def _as(secured_kafka: SecuredKafka, user: str, catalogue: TopicCatalogue) -> CliSettings:
    return CliSettings(_env_file=None, **secured_kafka.fields(user), topic_prefix=catalogue.prefix)


async def test_a_topic_the_principal_may_not_read_is_not_reported_missing(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    client = _as(secured_kafka, "integrator", acl_catalogue)  # an external publisher
    with pytest.raises(NotAuthorized) as refused:
        await read_dead_letters(client, 10)
    assert refused.value.exit_code is ExitCode.FAILURE
    assert "AGENT_RUNTIME_KAFKA_SASL_USERNAME=integrator" in str(refused.value)
    assert acl_catalogue.name(TopicName.DEAD_LETTERS) in str(refused.value)
    with pytest.raises(NotAuthorized):
        await partitions_of(client, acl_catalogue.name(TopicName.AUDIT))  # what `audit tail` reads

    states = {s.catalogue_name: s for s in await topic_states(client)}
    assert (states["commands"].exists, states["commands"].authorized) == (True, True)
    assert (states["turns"].exists, states["turns"].authorized) == (False, False)


async def test_the_operator_reads_the_dead_letters(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    operator = _as(secured_kafka, "operator", acl_catalogue)
    assert await read_dead_letters(operator, 10) == []
    assert all(s.authorized and s.exists for s in await topic_states(operator))


async def test_consumer_groups_the_principal_may_not_describe_are_not_taken_for_none(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    gateway = _as(secured_kafka, "gateway", acl_catalogue)  # no DESCRIBE on the groups
    with pytest.raises(NotAuthorized) as refused:
        await consumer_lag(gateway)
    assert f"{acl_catalogue.prefix}session-commands" in str(refused.value)
    with pytest.raises(NotAuthorized):
        await consumer_lag(gateway, f"{acl_catalogue.prefix}audit")
    # The operators' DESCRIBE on the prefix: no group has joined yet, nothing to show.
    assert await consumer_lag(_as(secured_kafka, "operator", acl_catalogue)) == []


async def test_a_command_the_principal_may_not_publish_is_said_in_one_line(
    secured_kafka: SecuredKafka, acl_catalogue: TopicCatalogue
) -> None:
    # audit's principal reads commands (so the topic is described) but may not write them:
    # `send` ended in a TopicAuthorizationFailedError traceback.
    audit = _as(secured_kafka, "audit", acl_catalogue)
    command = CreateSession(id="cmd-refused-write", session_id="s-refused", tenant_id="acme")
    with pytest.raises(NotAuthorized) as refused:
        await publish_command(audit, command)
    assert f"write topic '{acl_catalogue.name(TopicName.COMMANDS)}'" in str(refused.value)
