"""Audit settings: the shared runtime settings plus redaction, retention and the log.

Environment variables carry the `AGENT_RUNTIME_` prefix, e.g. `AGENT_RUNTIME_REDACTION_MODE=full`.
"""

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, NonNegativeInt, PositiveFloat, PositiveInt

from contracts.audit import RedactionMode
from services.audit.redaction import RedactionPolicy
from services.runtime.retention import MAX_RETENTION_DAYS
from services.runtime.settings import RuntimeSettings, prefixed_name


def _not_a_system_collection(name: str) -> str:
    if name.startswith("system."):
        raise ValueError("system.* collections are MongoDB's own")
    return name


AuditLogCollection = Annotated[
    str,
    # A name MongoDB takes (no `$`, no leading/trailing or double dot; `system.` is the
    # server's): checked here, it is a setting error at start (exit 2) naming the variable,
    # not pymongo's InvalidName traceback or a write refused on every record. The CLI's
    # `audit query` reads the same setting.
    Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"),
    AfterValidator(_not_a_system_collection),
]


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
