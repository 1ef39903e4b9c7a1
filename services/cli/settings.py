"""CLI settings: the runtime's (same env prefix and .env) plus who the CLI speaks for."""

from typing import Self

from pydantic import Field, FilePath, SecretStr, ValidationError, model_validator

from contracts.base import Id
from services.audit.audit_log import COLLECTION, AuditLogCollection
from services.cli.errors import UsageProblem
from services.runtime.command_signing import signing_key
from services.runtime.settings import RuntimeSettings
from services.runtime.settings_errors import invalid_settings


class CliSettings(RuntimeSettings):
    tenant_id: Id = Field("local", description="Tenant the CLI publishes commands for.")
    cli_source: str = Field("agent-runtime-cli", description="ce_source of published commands.")
    cli_hmac_key: SecretStr | None = Field(
        None,
        description="Signs published commands when session-commands requires it for cli_source.",
    )
    cli_hmac_key_file: FilePath | None = Field(None, description="A mounted file holding that key.")
    reply_timeout_s: float = Field(120.0, gt=0, description="How long chat/demo wait for a turn.")
    audit_log_collection: AuditLogCollection = Field(
        COLLECTION, description="The audit log `audit query` reads (the audit service's setting)."
    )
    gateway_port: int = Field(
        8000, ge=0, le=65_535, description="The local gateway's port (make run / make up)."
    )

    @model_validator(mode="after")
    def _usable_hmac_key(self) -> Self:
        try:
            self.cli_signing_key()
        except ValueError as error:  # empty or unreadable: a bad setting, named
            raise ValueError(f"AGENT_RUNTIME_CLI_HMAC_KEY / _FILE: {error}") from None
        return self

    def cli_signing_key(self) -> bytes | None:
        return signing_key(self.cli_hmac_key, self.cli_hmac_key_file)


def cli_settings() -> CliSettings:
    """The settings, or a usage error (exit 2) naming each bad variable, never a traceback."""
    try:
        return CliSettings()
    except ValidationError as exc:
        raise UsageProblem(invalid_settings(exc, CliSettings)) from None
