import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.topics import TopicName
from services.audit.settings import AuditSettings
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.settings import RuntimeSettings
from services.runtime.settings_errors import invalid_settings
from services.session_commands.settings import SessionCommandsSettings

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
        ("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", "kafka:x"),
        ("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092,kafka-2:"),
        ("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", ":9092"),
        ("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", "kafka:99999"),
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


def test_bootstrap_servers_take_what_the_kafka_client_takes() -> None:
    for servers in ("kafka", "kafka:9093", "[::1]:9092", "a:1, b:2", "k-0.k.ns.svc:9094"):
        assert RuntimeSettings(_env_file=None, kafka_bootstrap_servers=servers)


def test_services_subclass_it() -> None:
    class AuditSettings(RuntimeSettings):
        audit_retention_days: int = 30

    assert AuditSettings(_env_file=None).audit_retention_days == 30


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS", "")
    assert RuntimeSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_static_membership_uses_the_instance_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RuntimeSettings(_env_file=None).group_instance_id is None  # unnamed: dynamic member
    monkeypatch.setenv("AGENT_RUNTIME_INSTANCE_NAME", "session-commands-7f9c-0")
    assert RuntimeSettings(_env_file=None).group_instance_id == "session-commands-7f9c-0"
    monkeypatch.setenv("AGENT_RUNTIME_STATIC_MEMBERSHIP", "false")
    assert RuntimeSettings(_env_file=None).group_instance_id is None
    monkeypatch.setenv("AGENT_RUNTIME_INSTANCE_NAME", "no spaces/slashes")
    with pytest.raises(ValidationError, match="instance_name"):
        RuntimeSettings(_env_file=None)


def test_a_bad_value_is_named_but_never_echoed() -> None:
    # A service's start-up error must not print a URI's password (or a key) back.
    with pytest.raises(ValidationError) as caught:
        RuntimeSettings(mongodb_uri="mongo://admin:S3cret@db:27017")
    assert "mongodb_uri" in str(caught.value)
    assert "S3cret" not in str(caught.value)


def test_an_invalid_setting_is_named_by_its_variable_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_MONGODB_URI", "http://user:s3cr3tpw@x")
    with pytest.raises(ValidationError) as raised:
        AuditSettings()
    line = invalid_settings(raised.value)
    assert line.startswith("invalid settings: AGENT_RUNTIME_MONGODB_URI: ")
    assert "s3cr3tpw" not in line
    assert "default_factory" not in line  # settings derived from it add nothing to say


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("mongodb://app:s3cr3tpw@db:notaport/", "Port contains non-digit characters"),
        ("mongodb://app:s3cr3tpw@db/?tls=true&tlsCAFile=/nonexistent/ca.pem", "No such file"),
        ("mongodb://app:s3cr@pw@db/", "must be escaped"),
    ],
)
def test_a_mongodb_uri_the_client_would_refuse_is_an_invalid_setting(
    monkeypatch: pytest.MonkeyPatch, uri: str, problem: str
) -> None:
    # Was a traceback from PyMongo when the client was built (exit 1), not this one line.
    monkeypatch.setenv("AGENT_RUNTIME_MONGODB_URI", uri)
    with pytest.raises(ValidationError) as raised:
        AuditSettings()
    line = invalid_settings(raised.value)
    assert line.startswith("invalid settings: AGENT_RUNTIME_MONGODB_URI: ")
    assert problem in line
    assert "s3cr" not in line


def test_an_optional_object_setting_that_is_not_json_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Was "Input should be a valid dictionary" (the text reached validation as a string).
    monkeypatch.setenv("AGENT_RUNTIME_COMMAND_SOURCES", '{"gw": {"hmac_key": "k3y-s3cr3t"')
    with pytest.raises(ValidationError) as raised:
        SessionCommandsSettings(_env_file=None)
    line = invalid_settings(raised.value, SessionCommandsSettings)
    assert line == "invalid settings: AGENT_RUNTIME_COMMAND_SOURCES: not valid JSON"


def _started(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached
            **env,
        },
        check=False,
    )


@pytest.mark.parametrize(
    "module",
    [
        "services.session_commands",
        "services.agent_orchestration",
        "services.llm_invocation",
        "services.tool_invocation",
        "services.audit",
        "services.gateway",
    ],
)
def test_a_service_with_an_invalid_setting_exits_2_with_one_line(module: str) -> None:
    started = _started(module, AGENT_RUNTIME_MONGODB_URI="http://user:s3cr3tpw@x")
    assert started.returncode == 2, started.stderr
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1, started.stderr
    assert "invalid settings: AGENT_RUNTIME_MONGODB_URI: " in lines[0]
    assert "s3cr3tpw" not in started.stderr + started.stdout


@pytest.mark.parametrize(
    "service",
    ["session_commands", "agent_orchestration", "llm_invocation", "tool_invocation", "audit"],
)
def test_faststream_run_with_an_invalid_setting_exits_2_with_one_line(service: str) -> None:
    # docs/operations.md offers `faststream run --factory services.<name>.app:create_app` as
    # the other way to start a consumer: the same one line and exit 2 as `python -m`.
    started = subprocess.run(
        [
            str(Path(sys.executable).with_name("faststream")),
            "run",
            "--factory",
            f"services.{service}.app:create_app",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached
            "AGENT_RUNTIME_MONGODB_URI": "http://user:s3cr3tpw@x",
        },
        check=False,
    )
    assert started.returncode == 2, started.stderr
    (line,) = started.stderr.strip().splitlines()
    assert line.startswith(f"{service.replace('_', '-')}: invalid settings: "), line
    assert "AGENT_RUNTIME_MONGODB_URI: " in line
    assert "s3cr3tpw" not in started.stderr + started.stdout


def test_repr_and_str_of_settings_show_no_uri_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_MONGODB_URI", "mongodb://app:S3cret@db:27017/")
    monkeypatch.setenv("LLM_BASE_URL", "https://user:Pa55@proxy/v1")
    monkeypatch.setenv("LLM_MODEL", "m")
    settings = LLMInvocationSettings()
    for shown in (repr(settings), str(settings)):
        assert "S3cret" not in shown
        assert "Pa55" not in shown
        assert "mongodb://app:***@db:27017/" in shown
        assert "https://user:***@proxy/v1" in shown
    assert settings.mongodb_uri == "mongodb://app:S3cret@db:27017/"  # the value itself is intact
    assert settings.llm_base_url == "https://user:Pa55@proxy/v1"


def test_a_setting_read_under_several_names_is_named_by_all_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "ftp://user:Pa55@proxy/v1")
    monkeypatch.setenv("LLM_MODEL", "m")
    with pytest.raises(ValidationError) as raised:
        LLMInvocationSettings()
    line = invalid_settings(raised.value, LLMInvocationSettings)
    assert line.startswith("invalid settings: AGENT_RUNTIME_LLM_BASE_URL / LLM_BASE_URL: ")
    assert "Pa55" not in line


def test_a_list_or_object_setting_that_is_not_json_exits_2_naming_it() -> None:
    started = _started("services.gateway", AGENT_RUNTIME_GATEWAY_API_KEYS='{"k": s3cr3t')
    assert started.returncode == 2, started.stderr
    assert started.stderr.strip().splitlines() == [
        "gateway: invalid settings: AGENT_RUNTIME_GATEWAY_API_KEYS: not valid JSON"
    ]
    assert "s3cr3t" not in started.stderr


def test_an_optional_object_setting_that_is_not_json_says_so_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `dict[…] | None`: pydantic-settings hands the undecodable text to validation, which said
    # "Input should be a valid dictionary".
    monkeypatch.setenv("AGENT_RUNTIME_COMMAND_SOURCES", '{"crm": s3cr3t')
    with pytest.raises(ValidationError) as raised:
        SessionCommandsSettings()
    line = invalid_settings(raised.value, SessionCommandsSettings)
    assert line == "invalid settings: AGENT_RUNTIME_COMMAND_SOURCES: not valid JSON"


def test_a_rule_between_settings_names_the_variables_it_is_about() -> None:
    started = _started("services.session_commands", AGENT_RUNTIME_RETRY_INITIAL_BACKOFF_S="50")
    assert started.returncode == 2, started.stderr
    [line] = started.stderr.strip().splitlines()
    assert line.startswith(
        "session-commands: invalid settings: AGENT_RUNTIME_RETRY_INITIAL_BACKOFF_S,"
        " AGENT_RUNTIME_RETRY_MAX_BACKOFF_S: "
    ), line


@pytest.mark.parametrize(
    ("module", "variable", "said"),
    [
        ("services.tool_invocation", "AGENT_RUNTIME_MCP_SERVERS_FILE", "MCP servers file"),
        ("services.audit", "AGENT_RUNTIME_LLM_PRICES_PATH", "LLM prices file"),
        ("services.agent_orchestration", "AGENT_RUNTIME_AGENT_CATALOGUE_PATH", "agent catalogue"),
        ("services.gateway", "AGENT_RUNTIME_AGENT_CATALOGUE_PATH", "agent catalogue"),
    ],
)
def test_a_configuration_file_that_cannot_be_read_exits_2_without_a_traceback(
    tmp_path: Path, module: str, variable: str, said: str
) -> None:
    missing = tmp_path / "missing.toml"
    started = _started(module, **{variable: str(missing)})
    assert started.returncode == 2, started.stderr
    assert started.stderr.startswith(f"{module.removeprefix('services.').replace('_', '-')}: ")
    assert said in started.stderr
    assert str(missing) in started.stderr
    assert "Traceback" not in started.stderr
