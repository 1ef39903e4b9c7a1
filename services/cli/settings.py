"""CLI settings: the runtime's (same env prefix and .env) plus who the CLI speaks for."""

from pydantic import Field, FilePath, SecretStr

from services.runtime.settings import RuntimeSettings


class CliSettings(RuntimeSettings):
    tenant_id: str = Field("local", description="Tenant the CLI publishes commands for.")
    cli_source: str = Field("agent-runtime-cli", description="ce_source of published commands.")
    cli_hmac_key: SecretStr | None = Field(
        None,
        description="Signs published commands when session-commands requires it for cli_source.",
    )
    cli_hmac_key_file: FilePath | None = Field(None, description="A mounted file holding that key.")
    reply_timeout_s: float = Field(120.0, gt=0, description="How long chat/demo wait for a turn.")

    def cli_signing_key(self) -> bytes | None:
        if self.cli_hmac_key is not None:
            return self.cli_hmac_key.get_secret_value().encode()
        if self.cli_hmac_key_file is not None:
            return self.cli_hmac_key_file.read_bytes().rstrip(b"\r\n")
        return None
