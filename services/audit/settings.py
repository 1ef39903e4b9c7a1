"""Audit settings: the shared runtime settings plus redaction, retention and the log.

Environment variables carry the `AGENT_RUNTIME_` prefix, e.g. `AGENT_RUNTIME_REDACTION_MODE=full`.
"""

from pathlib import Path

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt

from contracts.audit import RedactionMode
from services.audit.audit_log import AuditLogCollection
from services.audit.redaction import RedactionPolicy
from services.runtime.retention import MAX_RETENTION_DAYS
from services.runtime.settings import RuntimeSettings, prefixed_name


class AuditSettings(RuntimeSettings):
    audit_consumer_group: str = Field(
        default_factory=prefixed_name("audit"),
        min_length=1,
        max_length=255,
        description="Audit's own group.",
    )
    redaction_mode: RedactionMode = Field(
        RedactionMode.HASHED, description="full | truncated | hashed (sha256 + length)."
    )
    redaction_truncate_chars: NonNegativeInt = Field(
        200, description="Characters kept by the truncated mode."
    )
    redaction_full_max_chars: PositiveInt = Field(
        32_000, description="Bound on one content value even in full mode."
    )
    audit_log_collection: AuditLogCollection = "audit_log"
    audit_retention_days: PositiveFloat = Field(
        30.0, le=MAX_RETENTION_DAYS, description="Audit log retention."
    )
    audit_retention_interval_s: PositiveFloat = Field(
        3_600.0, description="How often the retention job runs."
    )

    llm_prices_path: Path | None = Field(
        None,
        description="TOML of USD per million tokens by model (the cost metric); None = the "
        "packaged services/audit/llm_prices.toml.",
    )

    def redaction_policy(self) -> RedactionPolicy:
        return RedactionPolicy(
            mode=self.redaction_mode,
            truncate_chars=self.redaction_truncate_chars,
            full_max_chars=self.redaction_full_max_chars,
        )
