"""CLI settings: the runtime's (same env prefix and .env) plus who the CLI speaks for."""

from pydantic import Field

from services.runtime.settings import RuntimeSettings


class CliSettings(RuntimeSettings):
    tenant_id: str = Field("local", description="Tenant the CLI publishes commands for.")
    cli_source: str = Field("agent-runtime-cli", description="ce_source of published commands.")
    reply_timeout_s: float = Field(120.0, gt=0, description="How long chat/demo wait for a turn.")
