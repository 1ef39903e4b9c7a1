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
    main,
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


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot be read (No such file or directory)"),
        ("roles = [1\n", "not valid TOML"),
        (b"\xff\xfe[roles]\n", "not UTF-8 text"),
        ('[roles]\nauditors = ["User:audit"]\n', "unknown role 'auditors' (known: upstream,"),
        # A bare string was read character by character: ACLs for principals U, s, e, r, …
        ('[roles]\naudit = "User:audit"\n', "role 'audit' must be a list of Kafka principals"),
        ('[roles]\naudit = ["audit"]\n', "role 'audit' must be a list of Kafka principals"),
        ("roles = 3\n", "[roles] must be a table"),
    ],
)
def test_an_unusable_acl_file_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | bytes | None,
    said: str,
) -> None:
    path = tmp_path / "acls.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)

    assert main(["--file", str(path), "--print"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"acls: {path}: "), line
    assert said in line, line


def test_an_invalid_setting_is_one_line_naming_it_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_MAX_IN_FLIGHT", "0")

    assert main(["--file", str(ACL_FILE), "--print"]) == 2

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("acls: invalid settings: AGENT_RUNTIME_MAX_IN_FLIGHT: "), line


def test_principals_of_any_kafka_form_are_taken(tmp_path: Path) -> None:
    path = tmp_path / "acls.toml"
    path.write_text('[roles]\naudit = ["User:CN=audit,O=Example", "Group:auditors"]\n')

    assert load_roles(path) == {Service.AUDIT: ("User:CN=audit,O=Example", "Group:auditors")}


def test_the_configured_dead_letter_topic_is_the_one_granted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The services write AGENT_RUNTIME_DEAD_LETTER_TOPIC; ACLs on `<prefix>dead-letters`
    # instead had the broker refuse every dead letter.
    monkeypatch.setenv("AGENT_RUNTIME_DEAD_LETTER_TOPIC", "shared.dead-letters")

    for prefix in ((), ("--prefix", "prod.")):
        assert main(["--file", str(ACL_FILE), "--print", *prefix]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert "ALLOW User:audit READ topic shared.dead-letters" in printed
        assert not [
            line
            for line in printed
            if line.endswith(("agent-runtime.dead-letters", "prod.dead-letters"))
        ]
