"""tool-invocation settings: the shared runtime settings plus the MCP servers file, call bounds,
kept results and cancellation. Environment variables carry the `AGENT_RUNTIME_` prefix."""

from pathlib import Path
from typing import Self

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from contracts.limits import MAX_TOOL_RESULT_LENGTH
from services.runtime.retention import MAX_RETENTION_DAYS
from services.runtime.settings import RuntimeSettings, prefixed_name


class ToolInvocationSettings(RuntimeSettings):
    max_in_flight: PositiveInt = Field(
        256,
        description="Records received but not finished, per process (calls mostly wait on MCP "
        "servers); above it the consumer pauses its partitions.",
    )
    tool_consumer_group: str = Field(
        default_factory=prefixed_name("tool-invocation"), min_length=1, max_length=255
    )
    mcp_servers_file: Path | None = Field(
        None,
        description="TOML file of the MCP servers (mcp_servers.py, docs/tool-invocation.md). "
        "Unset: no servers; every `mcp:` call is answered with an `unknown_server` error.",
    )

    # Resilience
    tool_max_attempts: PositiveInt = Field(
        3, description="Attempts of one call (retries only for idempotent tools or unsent calls)."
    )
    tool_retry_initial_backoff_s: PositiveFloat = 0.2
    tool_retry_max_backoff_s: PositiveFloat = 5.0
    tool_circuit_threshold: PositiveInt = Field(
        5, description="Consecutive server faults that open a server's circuit."
    )
    tool_circuit_ttl_s: PositiveFloat = Field(
        30.0, description="Longest wait between half-open trials (failed trials double the wait)."
    )
    tool_circuit_first_trial_s: PositiveFloat = 1.0
    tool_max_result_chars: int = Field(
        MAX_TOOL_RESULT_LENGTH,
        ge=100,
        le=MAX_TOOL_RESULT_LENGTH,
        description="Longer tool output is cut, marked `[truncated by tool-invocation]`.",
    )

    # Kept results and cancellation
    tool_result_retention_hours: PositiveFloat = Field(
        168.0,
        le=MAX_RETENTION_DAYS * 24,
        description="Kept results live as long as session-events keeps their request.",
    )
    tool_result_retention_interval_s: PositiveFloat = 3_600.0
    tool_claim_lease_s: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="Lease of a call's claim, renewed every third of it while the tool runs; "
        "another owner runs the tool only after it lapsed (the holder crashed).",
    )
    tool_cancellation_lookback_s: float = Field(
        600.0,
        ge=0,
        le=86_400,
        description="History of session-events read back at start for cancelled turns, so a "
        "call redelivered after a crash does not run for a cancelled turn.",
    )

    @model_validator(mode="after")
    def _check_waits(self) -> Self:
        # The backoff and the breakers would quietly cap the first wait at the longest one;
        # a contradiction between two settings is refused at start-up, naming both.
        if self.tool_retry_initial_backoff_s > self.tool_retry_max_backoff_s:
            raise ValueError("tool_retry_initial_backoff_s must be <= tool_retry_max_backoff_s")
        if self.tool_circuit_first_trial_s > self.tool_circuit_ttl_s:
            raise ValueError("tool_circuit_first_trial_s must be <= tool_circuit_ttl_s")
        return self
