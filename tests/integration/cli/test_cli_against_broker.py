import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import TopicCatalogue, TopicName
from services.admin.topic_configs import set_topic_configs
from services.admin.topics import delete_topics, ensure_topics
from services.runtime.partitioning import partition_for
from tests.integration.cli.cli_process import run_cli

pytestmark = pytest.mark.integration


async def test_client_partition_matches_the_producers(
    kafka_bootstrap_servers: str, topic_factory: object
) -> None:
    topic = await topic_factory("cli-partitions", partitions=12)  # type: ignore[operator]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        for i in range(50):
            key = f"session-{i}"
            metadata = await producer.send_and_wait(topic, b"x", key=key.encode())
            assert metadata.partition == partition_for(key, 12), key
    finally:
        await producer.stop()


@pytest.mark.parametrize(
    "command",
    [
        ("groups", "lag", "--json"),
        ("dlq", "list", "--json"),
        ("topics", "describe", "--json"),
        ("audit", "tail", "--no-follow", "--json"),
    ],
)
def test_unreachable_broker_is_one_clear_line_and_exit_3(command: tuple[str, ...]) -> None:
    # -b overrides the environment's broker: a closed port.
    result = run_cli("-b", "127.0.0.1:1", *command, env={"AGENT_RUNTIME_TOPIC_PREFIX": "x."})
    assert result.returncode == 3, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in lines[0]


def test_an_unreachable_database_is_named_without_its_password() -> None:
    uri = "mongodb://admin:S3cret@127.0.0.1:1/?directConnection=true"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "sessions", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"AGENT_RUNTIME_MONGODB_URI": uri, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "S3cret" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "cannot reach MongoDB at mongodb://admin:***@127.0.0.1:1/" in lines[0]


def test_version_and_usage_errors(tmp_path: Path) -> None:
    version = run_cli("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("agent-runtime ")
    for wrong in (
        ("groups", "lag", "--no-such-option"),
        ("groups", "lag", "--max-lag", "-1"),
        ("--topic-prefix", "not a prefix", "topics", "describe"),
        ("send", "--kind", "message"),
        # A port that is not a number: a usage error, not the client's ValueError traceback.
        ("-b", "kafka:x", "groups", "lag"),
        ("send", "--json", "/nonexistent/command.json"),
        # Values the chat's commands cannot carry: a ValidationError traceback before.
        ("chat", "--tenant", "x/y"),
        ("chat", "--title", "t" * 300),
        # Given but empty (`--tenant "$T"`, T unset): it read the default tenant's sessions;
        # an empty --session said "no session session-<a new id>".
        ("sessions", "list", "--tenant", ""),
        ("sessions", "history", "s-1", "--tenant", ""),
        ("chat", "--tenant", ""),
        ("chat", "--session", ""),
        # Empty global options: the settings ignore an empty variable, so these read the
        # default broker and the default deployment's (`agent-runtime.`) dead letters.
        ("-b", "", "groups", "lag"),
        ("--topic-prefix", "", "dlq", "list"),
    ):
        result = run_cli(*wrong)
        assert result.returncode == 2, (wrong, result.stderr)
        assert "╭" not in result.stderr, "piped: no box drawing"
        assert "Traceback" not in result.stderr, (wrong, result.stderr)
    # A bad setting stops `up` before it starts anything (it was a ValidationError traceback).
    up = run_cli("up", "--run-dir", str(tmp_path), env={"AGENT_RUNTIME_TENANT_ID": "a b"})
    assert up.returncode == 2, up.stderr
    assert "AGENT_RUNTIME_TENANT_ID" in up.stderr
    assert not (tmp_path / "pids").exists()


def test_not_found_is_exit_4(kafka_bootstrap_servers: str, mongodb_uri: str) -> None:
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_MONGODB_URI": mongodb_uri,
        "AGENT_RUNTIME_MONGODB_DATABASE": "cli_not_found",
    }
    for missing in (
        ("sessions", "show", "session-absent", "--json"),
        ("sessions", "history", "session-absent", "--json"),
        ("chat", "--session", "session-absent"),  # was a chat refusing every message
        ("sessions", "show", "session[/]absent"),  # the error quotes it: not rich markup
        ("groups", "lag", "--group", "group-absent-42"),
        ("--topic-prefix", "absent-prefix-42.", "audit", "tail", "--no-follow"),
        # Without its dead-letters topic: not an empty listing, nor `replayed 0` (exit 0).
        ("--topic-prefix", "absent-prefix-42.", "dlq", "list"),
        ("--topic-prefix", "absent-prefix-42.", "dlq", "replay", "--all"),
        ("--topic-prefix", "absent-prefix-42.", "groups", "lag", "--max-lag", "0"),
        # The conversation commands under a prefix without topics: one line, not a client
        # waiting forever on the metadata of a topic the broker never creates.
        ("--topic-prefix", "absent-prefix-42.", "send", "--kind", "close", "--session", "s-1"),
        ("--topic-prefix", "absent-prefix-42.", "chat"),
        ("--topic-prefix", "absent-prefix-42.", "demo"),
    ):
        result = run_cli(*missing, env=env)
        assert result.returncode == 4, (missing, result.stderr)
        assert result.stdout == ""
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (missing, result.stderr)


async def test_chat_and_demo_without_services_say_so_in_one_line(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    """The topics exist but nothing consumes them: the session is never created, and the
    reply timeout ends chat and demo with exit 1 and one line naming the setting."""
    catalogue = TopicCatalogue(prefix=f"cli-idle-{unique_suffix}.", partitions=1)
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        "AGENT_RUNTIME_REPLY_TIMEOUT_S": "2",
    }
    try:
        for command in ("chat", "demo"):
            result = run_cli(command, env=env)
            assert result.returncode == 1, (command, result.stderr)
            assert "Traceback" not in result.stderr, result.stderr
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, result.stderr
            assert "within 2 s (AGENT_RUNTIME_REPLY_TIMEOUT_S)" in lines[0], lines[0]
            assert "are the services running?" in lines[0]
    finally:
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def test_piped_lines_are_not_folded_at_the_terminal_width(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    """A script reads `send`'s command id from its one line: rich folded the line at 80
    columns when piped (no terminal, no COLUMNS), the id landing on the next line."""
    catalogue = TopicCatalogue(prefix=f"cli-lines-{unique_suffix}.", partitions=1)
    await ensure_topics(kafka_bootstrap_servers, catalogue.specs())
    session = "session-" + "x" * 100
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
        "COLUMNS": "80",  # what a non-interactive shell gives rich: its default width
    }
    try:
        result = run_cli("send", "--kind", "close", "--session", session, env=env)
        assert result.returncode == 0, result.stderr
        (line,) = result.stdout.splitlines()
        assert line.startswith("published session.close.v1 cmd-"), line
        assert line.endswith(f" for session {session}"), line
    finally:
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def test_topics_create_prints_each_change_and_replication_warning(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    catalogue = TopicCatalogue(prefix=f"cli-topics-{unique_suffix}.")
    commands = catalogue.name(TopicName.COMMANDS)
    env = {
        "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "AGENT_RUNTIME_TOPIC_PREFIX": catalogue.prefix,
    }
    try:
        first = run_cli("topics", "create", env=env)
        assert first.returncode == 0, first.stderr
        assert f"  created {commands}" in first.stdout.splitlines()

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
        await admin.start()
        try:
            await set_topic_configs(admin, {commands: {"retention.ms": "60000"}})
        finally:
            await admin.close()
        repaired = await _until_changed(env, commands)
        assert any(
            line.startswith(f"  changed {commands}: retention.ms 60000 -> ")
            for line in repaired.stdout.splitlines()
        ), repaired.stdout

        short = run_cli(
            "topics", "create", env={**env, "AGENT_RUNTIME_TOPIC_REPLICATION_FACTOR": "3"}
        )
        assert short.returncode == 0, short.stderr
        assert (
            f"  warning: {commands} has replication factor 1, the settings say 3: "
            "reassign its partitions"
        ) in short.stdout.splitlines()
    finally:
        await delete_topics(kafka_bootstrap_servers, [s.name for s in catalogue.specs()])


async def _until_changed(env: dict[str, str], topic: str) -> "subprocess.CompletedProcess[str]":
    # The broker applies an AlterConfigs to what DescribeConfigs answers a moment later.
    async with asyncio.timeout(30):
        while True:
            result = run_cli("topics", "create", env=env)
            assert result.returncode == 0, result.stderr
            if f"  changed {topic}:" in result.stdout:
                return result
            await asyncio.sleep(0.2)
