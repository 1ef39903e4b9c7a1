"""llm-invocation settings: the shared runtime settings plus provider, resilience and retention.

Environment variables carry the `AGENT_RUNTIME_` prefix. The provider's three also answer to
the names every OpenAI-compatible tool uses, `LLM_BASE_URL`, `LLM_API_KEY` and `LLM_MODEL`.
With none of them set, the offline provider runs.
"""

from typing import Literal, Self

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.retention import MAX_RETENTION_DAYS
from services.runtime.settings import RuntimeSettings, prefixed_name

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def _aliases(name: str) -> AliasChoices:
    return AliasChoices(f"agent_runtime_{name}", name, name.upper())


class LLMInvocationSettings(RuntimeSettings):
    model_config = SettingsConfigDict(populate_by_name=True)

    max_in_flight: PositiveInt = Field(
        512,
        description="Invocations in flight per consumer (they mostly wait on the provider); "
        "above it the consumer pauses its partitions.",
    )
    llm_consumer_group: str = Field(
        default_factory=prefixed_name("llm-invocation"), min_length=1, max_length=255
    )
    llm_erasure_consumer_group: str = Field(
        default_factory=prefixed_name("llm-invocation.erasure"),
        min_length=1,
        max_length=255,
        description="Reads session-events for SessionErased (kept_results_erasure.py).",
    )

    # Provider
    llm_provider: Literal["auto", "offline", "openai"] = Field(
        "auto", description="auto: openai when LLM_BASE_URL or LLM_API_KEY is set, else offline."
    )
    llm_base_url: str | None = Field(
        None, validation_alias=_aliases("llm_base_url"), pattern=r"^https?://"
    )
    llm_api_key: SecretStr | None = Field(None, validation_alias=_aliases("llm_api_key"))
    llm_model: str | None = Field(
        None, validation_alias=_aliases("llm_model"), min_length=1, max_length=128
    )
    llm_connect_timeout_s: PositiveFloat = 10.0
    llm_read_timeout_s: PositiveFloat = Field(
        60.0, description="Longest silence between two chunks of a stream."
    )
    llm_write_timeout_s: PositiveFloat = 10.0
    llm_pool_timeout_s: PositiveFloat = 30.0
    llm_max_connections: PositiveInt = Field(
        512, description="HTTP connections to the provider (one per streaming invocation)."
    )
    llm_connection_pools: PositiveInt = Field(
        64, description="httpx clients the connections are spread over (CPU cost per request)."
    )
    llm_include_usage: bool = Field(
        True, description="Ask for usage in the stream (stream_options.include_usage)."
    )
    llm_delta_interval_ms: float = Field(
        50.0,
        ge=0,
        le=1000,
        description="Text arriving sooner after the last delta joins the next one (0: none).",
    )
    offline_chunk_delay_s: float = Field(
        0.0, ge=0, le=5, description="Pause between the offline provider's deltas (demos)."
    )

    # Resilience
    llm_invocation_deadline_s: PositiveFloat = Field(
        120.0, description="Total time of one invocation: limiter waits, retries, streaming."
    )
    llm_max_attempts: PositiveInt = 4
    llm_retry_initial_backoff_s: PositiveFloat = 0.5
    llm_retry_max_backoff_s: PositiveFloat = 20.0
    llm_max_retry_after_s: PositiveFloat = Field(
        60.0, description="A longer Retry-After fails the invocation (retryable) instead."
    )
    llm_circuit_threshold: PositiveInt = Field(5, description="Consecutive failures that open it.")
    llm_circuit_ttl_s: PositiveFloat = Field(
        10.0, description="Longest wait between half-open trials (failed trials double the wait)."
    )
    llm_circuit_first_trial_s: PositiveFloat = Field(
        1.0, description="Wait from opening to the first half-open trial."
    )
    llm_requests_per_minute: PositiveFloat | None = None
    llm_tokens_per_minute: PositiveFloat | None = None
    llm_rate_burst_s: PositiveFloat = Field(
        10.0, description="Bucket size, in seconds of rate: what may go out at once."
    )

    # Kept results and abandonment
    llm_result_retention_hours: PositiveFloat = Field(
        72.0,
        le=MAX_RETENTION_DAYS * 24,
        description="Kept results live as long as llm-requests keeps their request.",
    )
    llm_result_retention_interval_s: PositiveFloat = 3_600.0
    llm_claim_lease_s: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description="Lease of an invocation's claim, renewed every third of it while the call "
        "runs; another owner calls the provider again only after it lapsed (docs: idempotency).",
    )
    llm_watch_session_events: bool = Field(
        True, description="Cancel invocations whose turn or session is over (docs: abandonment)."
    )
    llm_cancellation_lookback_s: float = Field(
        600.0,
        ge=0,
        le=86_400,
        description="History of session-events read back at start for cancelled turns, so a "
        "request redelivered after a crash is not paid for again (docs: cancellation).",
    )

    @property
    def provider_kind(self) -> Literal["offline", "openai"]:
        if self.llm_provider != "auto":
            return self.llm_provider
        return "openai" if self.llm_base_url or self.llm_api_key else "offline"

    @model_validator(mode="after")
    def _check_provider(self) -> Self:
        if self.provider_kind == "openai" and not self.llm_model:
            raise ValueError(
                "LLM_MODEL (or AGENT_RUNTIME_LLM_MODEL) must name the model when an "
                "OpenAI-compatible provider is configured (LLM_BASE_URL / LLM_API_KEY)"
            )
        if self.llm_retry_initial_backoff_s > self.llm_retry_max_backoff_s:
            raise ValueError("llm_retry_initial_backoff_s must be <= llm_retry_max_backoff_s")
        if self.llm_circuit_first_trial_s > self.llm_circuit_ttl_s:
            # The breakers would quietly cap the first wait at the longest one: refuse the
            # contradiction instead, as for the retry backoff above.
            raise ValueError("llm_circuit_first_trial_s must be <= llm_circuit_ttl_s")
        return self
