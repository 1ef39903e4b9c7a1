from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.topics import TopicName
from services.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    settings = RuntimeSettings(_env_file=None)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.name(TopicName.COMMANDS) == "agent-runtime.commands"
    assert settings.topics.name(TopicName.DEAD_LETTERS) == "agent-runtime.dead-letters"
    assert settings.max_in_flight == 256


def test_environment_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_MAX_IN_FLIGHT", "32")
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_PREFIX", "prod.")
    settings = RuntimeSettings(_env_file=None)
    assert settings.max_in_flight == 32
    assert settings.topics.name(TopicName.DEAD_LETTERS) == "prod.dead-letters"


def test_dotenv_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("AGENT_RUNTIME_LOG_FORMAT=console\n")
    assert RuntimeSettings(_env_file=env).log_format == "console"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_RUNTIME_MAX_IN_FLIGHT", "0"),
        ("AGENT_RUNTIME_LOG_FORMAT", "xml"),
        ("AGENT_RUNTIME_MONGODB_URI", "postgres://x"),
        ("AGENT_RUNTIME_RETRY_INITIAL_BACKOFF_S", "60"),
    ],
)
def test_bad_values_fail_at_start_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        RuntimeSettings(_env_file=None)
    field = name.removeprefix("AGENT_RUNTIME_").lower()
    assert field in str(caught.value) or "backoff" in str(caught.value)


def test_services_subclass_it() -> None:
    class AuditSettings(RuntimeSettings):
        audit_retention_days: int = 30

    assert AuditSettings(_env_file=None).audit_retention_days == 30


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", "")
    assert RuntimeSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_a_bad_value_is_named_but_never_echoed() -> None:
    # A service's start-up error must not print a URI's password (or a key) back.
    with pytest.raises(ValidationError) as caught:
        RuntimeSettings(mongodb_uri="mongo://admin:S3cret@db:27017")
    assert "mongodb_uri" in str(caught.value)
    assert "S3cret" not in str(caught.value)
