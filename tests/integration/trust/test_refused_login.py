"""A Kafka login the broker refuses fails at start, in one line naming the setting to change:
a service exits 2, the CLI exits with its error line - no retry loop, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import certifi
import pytest

from tests.secured_kafka import REPO_ROOT, SecuredKafka

pytestmark = pytest.mark.integration


def _wrong_password(secured_kafka: SecuredKafka, tmp_path: Path) -> dict[str, str]:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password\n")
    return {**secured_kafka.env("audit"), "AGENT_RUNTIME_KAFKA_SASL_PASSWORD_FILE": str(wrong)}


def _untrusted_ca(secured_kafka: SecuredKafka, tmp_path: Path) -> dict[str, str]:
    # Public CAs only (what a client gets when it forgets the cluster's CA file).
    return {**secured_kafka.env("audit"), "AGENT_RUNTIME_KAFKA_SSL_CAFILE": certifi.where()}


def _plaintext_on_the_tls_listener(secured_kafka: SecuredKafka, tmp_path: Path) -> dict[str, str]:
    # The security settings forgotten: was "stopped: KafkaConnectionError: Unable to
    # bootstrap", exit 1, a traceback.
    return {"AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": secured_kafka.bootstrap_servers}


CASES = {
    "wrong password": (_wrong_password, "AGENT_RUNTIME_KAFKA_SASL_PASSWORD_FILE="),
    "untrusted CA": (_untrusted_ca, "is not trusted by AGENT_RUNTIME_KAFKA_SSL_CAFILE="),
    "plaintext on a TLS listener": (
        _plaintext_on_the_tls_listener,
        "answered with TLS: its listener wants AGENT_RUNTIME_KAFKA_SECURITY_PROTOCOL=SSL",
    ),
}


def _run(module_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *module_args],
        cwd=REPO_ROOT,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AGENT_RUNTIME_HEALTH_PORT": "0",
            "AGENT_RUNTIME_HEALTH_HOST": "127.0.0.1",
            "AGENT_RUNTIME_LOG_FORMAT": "console",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize("case", CASES)
def test_a_service_stops_at_start_with_one_line(
    secured_kafka: SecuredKafka, tmp_path: Path, case: str
) -> None:
    make_env, expected = CASES[case]

    result = _run(["services.audit"], make_env(secured_kafka, tmp_path))

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    naming = [line for line in output.splitlines() if expected in line]
    assert len(naming) == 1, output
    assert "Traceback" not in output


@pytest.mark.parametrize("case", CASES)
def test_the_gateway_stops_at_start_with_one_line(
    secured_kafka: SecuredKafka, tmp_path: Path, case: str
) -> None:
    """As the consumers do: its event feed and publisher retried a wrong password forever
    (never ready, no line naming the setting)."""
    make_env, expected = CASES[case]

    result = _run(
        ["services.gateway"],
        {**make_env(secured_kafka, tmp_path), "AGENT_RUNTIME_GATEWAY_PORT": "0"},
    )

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    naming = [line for line in output.splitlines() if expected in line]
    assert len(naming) == 1, output
    assert "Traceback" not in output


@pytest.mark.parametrize("case", CASES)
def test_the_cli_says_it_in_one_line(
    secured_kafka: SecuredKafka, tmp_path: Path, case: str
) -> None:
    make_env, expected = CASES[case]

    result = _run(["services.cli.main", "topics", "describe"], make_env(secured_kafka, tmp_path))

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
