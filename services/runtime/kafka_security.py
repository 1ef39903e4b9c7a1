"""How every Kafka client of the project authenticates and encrypts: one set of settings
(`AGENT_RUNTIME_KAFKA_SECURITY_PROTOCOL`, `..._SASL_*`, `..._SSL_*`) and one function that turns
them into aiokafka keyword arguments, used by the services' FastStream broker, their own
consumers, the admin tools and the CLI alike:

    AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap_servers, **kafka_client_options(s))

Secrets are `SecretStr` (never in a repr or a log line); a password may come from a mounted file
(`AGENT_RUNTIME_KAFKA_SASL_PASSWORD_FILE`). `check_kafka_access` makes a misconfiguration (wrong
password, an untrusted CA, TLS against a plaintext port) fail at start in one line that names the
setting, instead of a client retrying forever.
"""

import ssl
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self

from aiokafka.conn import get_ip_port_afi
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_ENV = "AGENT_RUNTIME_"


class KafkaSecuritySettings(BaseSettings):
    """The Kafka connection fields of `RuntimeSettings` (which sets the env prefix)."""

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, description="Comma-separated host:port list."
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap_servers(cls, servers: str) -> str:
        """Parsed by aiokafka's own rule: a port that is not a number would otherwise surface
        as a ValueError traceback from inside the client, at its first connection."""
        for server in servers.split(","):
            try:
                host, port, _ = get_ip_port_afi(server.strip())
            except ValueError:
                host, port = "", 0
            if not host or not 0 < port < 65536:
                raise ValueError("expected host:port[,host:port…] with a port from 1 to 65535")
        return servers

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: FilePath | None = Field(
        None, description="A mounted file holding the SASL password (trailing newline ignored)."
    )
    kafka_ssl_cafile: FilePath | None = Field(
        None, description="PEM CA bundle the broker's certificate must chain to; None = system CAs."
    )
    kafka_ssl_certfile: FilePath | None = Field(None, description="Client certificate (mTLS).")
    kafka_ssl_keyfile: FilePath | None = Field(None, description="Client key (mTLS).")
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = Field(
        True, description="Verify that the broker's certificate names the host dialled."
    )

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    def kafka_sasl_secret(self) -> str:
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text().rstrip("\r\n")
        raise ValueError(f"{_ENV}KAFKA_SASL_PASSWORD or ..._PASSWORD_FILE is required")

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Self:
        protocol = f"{_ENV}KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        if self.kafka_uses_sasl:
            if not self.kafka_sasl_username:
                raise ValueError(f"{protocol} needs {_ENV}KAFKA_SASL_USERNAME")
            given = [self.kafka_sasl_password, self.kafka_sasl_password_file]
            if sum(value is not None for value in given) != 1:
                raise ValueError(
                    f"{protocol} needs exactly one of {_ENV}KAFKA_SASL_PASSWORD and "
                    f"{_ENV}KAFKA_SASL_PASSWORD_FILE"
                )
        elif self.kafka_sasl_username or self.kafka_sasl_password or self.kafka_sasl_password_file:
            raise ValueError(f"SASL credentials are set but {protocol} does not use SASL")
        ssl_files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not self.kafka_uses_tls and any(path is not None for path in ssl_files):
            raise ValueError(f"TLS files are set but {protocol} does not use TLS")
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError(f"{_ENV}KAFKA_SSL_KEYFILE needs {_ENV}KAFKA_SSL_CERTFILE")
        return self


def kafka_client_options(settings: KafkaSecuritySettings) -> dict[str, Any]:
    """aiokafka keyword arguments (producer, consumer, admin client) for the settings' security."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_uses_tls:
        options["ssl_context"] = _ssl_context(
            settings.kafka_ssl_cafile,
            settings.kafka_ssl_certfile,
            settings.kafka_ssl_keyfile,
            settings.kafka_ssl_key_password,
            settings.kafka_ssl_check_hostname,
        )
    if settings.kafka_uses_sasl:
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_secret(),
        }
    return options


def faststream_security(settings: KafkaSecuritySettings) -> BaseSecurity | None:
    """The same options in the form FastStream's `KafkaBroker(security=...)` takes."""
    options = kafka_client_options(settings)
    context: ssl.SSLContext | None = options.get("ssl_context")
    if not settings.kafka_uses_sasl:
        return BaseSecurity(ssl_context=context) if context is not None else None
    sasl = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }[settings.kafka_sasl_mechanism]
    return sasl(
        options["sasl_plain_username"],
        options["sasl_plain_password"],
        ssl_context=context,
        use_ssl=context is not None,
    )


@cache
def _ssl_context(
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    key_password: SecretStr | None,
    check_hostname: bool,
) -> ssl.SSLContext:
    # Cached: every client of a process shares one context (and reads the files once).
    context = ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    context.check_hostname = check_hostname
    if certfile is not None:
        context.load_cert_chain(
            str(certfile),
            str(keyfile) if keyfile is not None else None,
            key_password.get_secret_value() if key_password is not None else None,
        )
    return context
