"""Kafka client security from settings: one options builder, validation naming the variable,
secrets never in a repr."""

import ssl
from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from services.runtime.kafka_security import faststream_security, kafka_client_options
from services.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> RuntimeSettings:
    for name, value in env.items():
        monkeypatch.setenv(f"AGENT_RUNTIME_{name}", value)
    return RuntimeSettings(_env_file=None)


def test_plaintext_by_default() -> None:
    s = RuntimeSettings(_env_file=None)
    assert kafka_client_options(s) == {"security_protocol": "PLAINTEXT"}
    assert faststream_security(s) is None


def test_sasl_ssl_with_a_password_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    s = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="session-commands",
        KAFKA_SASL_PASSWORD_FILE=str(password),
    )
    options = kafka_client_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "session-commands",
    )
    assert options["sasl_plain_password"] == "s3cret"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname  # on unless switched off
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert isinstance(faststream_security(s), SASLScram256)


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-512", SASLScram512)],
)
def test_each_mechanism_has_its_faststream_form(
    monkeypatch: pytest.MonkeyPatch, mechanism: str, kind: type[BaseSecurity]
) -> None:
    s = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    security = faststream_security(s)
    assert isinstance(security, kind)
    assert not security.use_ssl
    assert "ssl_context" not in kafka_client_options(s)


def test_tls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CHECK_HOSTNAME="false")
    options = kafka_client_options(s)
    assert options["security_protocol"] == "SSL"
    assert not options["ssl_context"].check_hostname
    security = faststream_security(s)
    assert security is not None
    assert security.use_ssl


def test_the_password_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="hunter2-canary",
    )
    assert "hunter2-canary" not in repr(s)
    assert "hunter2-canary" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "AGENT_RUNTIME_KAFKA_SASL_USERNAME"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"},
            "AGENT_RUNTIME_KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
            "AGENT_RUNTIME_KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        ({"KAFKA_SASL_PASSWORD_FILE": "/no/such/file"}, "kafka_sasl_password_file"),
    ],
)
def test_a_wrong_combination_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        settings(monkeypatch, **env)
