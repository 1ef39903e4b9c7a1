"""The trust model's ACLs as derived from the topic catalogue and deploy/kafka/acls.toml."""

from pathlib import Path

import pytest

from contracts.topics import Service, TopicCatalogue, TopicName
from services.admin.acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    load_roles,
    trust_model_acls,
)

pytestmark = pytest.mark.unit

ACL_FILE = Path(__file__).resolve().parents[3] / "deploy" / "kafka" / "acls.toml"
CATALOGUE = TopicCatalogue(prefix="p.")
SERVICE_PRINCIPALS = {
    "User:session-commands",
    "User:agent-orchestration",
    "User:llm-invocation",
    "User:tool-invocation",
    "User:audit",
}
INTERNAL = (
    TopicName.TURNS,
    TopicName.LLM_REQUESTS,
    TopicName.LLM_RESULTS,
    TopicName.LLM_STREAM,
    TopicName.AUDIT,
    TopicName.DEAD_LETTERS,
    TopicName.SESSION_EVENTS,
)


def writers(bindings: list[AclBinding], topic: TopicName) -> set[str]:
    return {
        b.principal
        for b in bindings
        if b.resource is ResourceType.TOPIC
        and b.name == CATALOGUE.name(topic)
        and b.operation is Operation.WRITE
    }


def test_only_the_services_write_the_internal_topics() -> None:
    bindings = trust_model_acls(CATALOGUE, load_roles(ACL_FILE))

    for topic in INTERNAL:
        assert writers(bindings, topic), topic
        assert writers(bindings, topic) <= SERVICE_PRINCIPALS, topic
    assert writers(bindings, TopicName.TURNS) == {
        "User:agent-orchestration",
        "User:session-commands",
        "User:tool-invocation",
    }


def test_external_publishers_write_commands() -> None:
    bindings = trust_model_acls(CATALOGUE, load_roles(ACL_FILE))

    assert {"User:integrator", "User:gateway", "User:operator"} <= writers(
        bindings, TopicName.COMMANDS
    )


def test_each_service_reads_its_own_group_only() -> None:
    bindings = trust_model_acls(CATALOGUE, load_roles(ACL_FILE))

    groups = {
        (b.principal, b.name)
        for b in bindings
        if b.resource is ResourceType.GROUP and b.operation is Operation.READ
    }
    assert groups == {(p, f"p.{p.removeprefix('User:')}") for p in SERVICE_PRINCIPALS} | {
        ("User:llm-invocation", "p.llm-invocation.erasure")
    }
    assert not any(
        b.pattern is PatternType.PREFIXED and b.operation is not Operation.DESCRIBE
        for b in bindings
    )


def test_an_unknown_role_is_named(tmp_path: Path) -> None:
    acl_file = tmp_path / "acls.toml"
    acl_file.write_text('[roles]\nsesion-commands = ["User:x"]\n')

    with pytest.raises(ValueError, match="sesion-commands"):
        load_roles(acl_file)


def test_roles_without_principals_get_nothing() -> None:
    bindings = trust_model_acls(CATALOGUE, {Service.AUDIT: ("User:audit",)})

    assert {b.principal for b in bindings} == {"User:audit"}
