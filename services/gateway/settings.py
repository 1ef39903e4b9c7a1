"""Gateway settings: env prefix `AGENT_RUNTIME_`, like every service (see RuntimeSettings)."""

from pathlib import Path
from typing import Self

from jwt.algorithms import get_default_algorithms
from pydantic import (
    Field,
    FilePath,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    field_validator,
    model_validator,
)

from services.runtime.command_signing import signing_key
from services.runtime.settings import RuntimeSettings

# What verifies a signature with a JWKS's public keys: `none` verifies nothing, and an HMAC
# algorithm would take a key every holder of the JWKS knows.
_PUBLIC_KEY_ALGORITHMS = frozenset(
    name for name in get_default_algorithms() if name != "none" and not name.startswith("HS")
)


class GatewaySettings(RuntimeSettings):
    gateway_source: str = Field(
        "gateway",
        pattern=r"^[A-Za-z0-9._:/-]{1,128}$",
        description="ce_source of the commands the gateway publishes (AGENT_RUNTIME_COMMAND_SOURCES).",
    )
    gateway_hmac_key: SecretStr | None = Field(
        None, description="Signs the gateway's commands when session-commands requires it."
    )
    gateway_hmac_key_file: FilePath | None = Field(None, description="A mounted file holding it.")
    gateway_host: str = "0.0.0.0"
    gateway_port: int = Field(8000, ge=0, le=65_535, description="HTTP API, health and metrics.")
    gateway_api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Tenant per API key, keyed by the key's hash: "
        '{"sha256:<hex of the key>": "<tenant id>"} (services.gateway.api_keys.hash_api_key).',
    )
    gateway_api_keys_file: Path | None = Field(
        None,
        description="A mounted secret with more keys: one `<sha256:hex> <tenant id>` per line.",
    )
    gateway_jwt_jwks_url: str | None = Field(
        None, description="Accept JWTs signed by this JWKS (with issuer and audience); None = off."
    )
    gateway_jwt_issuer: str | None = None
    gateway_jwt_audience: str | None = None
    gateway_jwt_tenant_claim: str = Field("tenant_id", min_length=1)
    gateway_jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256"],
        min_length=1,
        description="Signature algorithms a token may use: public-key ones only (a JWKS "
        "publishes public keys; `none` and the HMAC ones are refused).",
    )
    gateway_jwt_leeway_s: NonNegativeFloat = Field(
        30.0,
        description="Clock skew allowed between the issuer and the gateway for exp, nbf and iat "
        "(a token the issuer just minted with a clock a few seconds ahead is not refused).",
    )
    gateway_rate_limit_per_minute: PositiveFloat = Field(
        60.0, description="Requests per minute per API key (token bucket), as the original."
    )
    gateway_rate_limit_burst: PositiveInt = Field(
        60, description="Bucket capacity: requests one key may make at once after a quiet spell."
    )
    gateway_decision_timeout_s: PositiveFloat = Field(
        10.0,
        description="How long a write waits for session-commands' decision before it answers "
        "202 with status `pending`.",
    )
    gateway_max_wait_s: PositiveFloat = Field(
        120.0, description="Upper bound of `Prefer: wait=N` for a turn's answer."
    )
    gateway_produce_timeout_s: PositiveFloat = Field(
        5.0, description="A command not acknowledged by the broker by then answers 503."
    )
    gateway_retry_after_s: PositiveInt = Field(
        5, description="Retry-After of a 503 (broker or database unavailable)."
    )
    gateway_idempotency_retention_s: PositiveInt = Field(
        24 * 3600, description="How long the response to an Idempotency-Key is replayed."
    )
    gateway_max_body_bytes: PositiveInt = Field(
        256 * 1024, description="Larger request bodies answer 413 before they are parsed."
    )
    gateway_stream_buffer: PositiveInt = Field(
        1_000,
        description="Events a live stream may hold unsent; past it the client is dropped with "
        "a resumable id (a slow client never stalls the replica).",
    )
    gateway_stream_max_replay_records: PositiveInt = Field(
        100_000,
        description="A resume whose gap holds more records than this (both topics of its "
        "partition, every session's) answers 410 stream_expired: read the history instead. "
        "Bounds what one reconnect makes the replica read.",
    )
    gateway_stream_heartbeat_s: PositiveFloat = Field(
        15.0, description="A comment line after this much silence keeps proxies from closing."
    )
    gateway_stream_replay_concurrency: PositiveInt = Field(
        32, description="Resumes replaying from Kafka at once (one short-lived reader each)."
    )
    gateway_session_owner_ttl_s: PositiveFloat = Field(
        30.0,
        description="How long a stream open remembers a session's tenant (the 404 check) "
        "instead of reading the session store again.",
    )
    gateway_session_owner_cache: PositiveInt = Field(
        100_000, description="Sessions whose tenant is remembered at most (oldest out first)."
    )
    agent_catalogue_path: Path | None = Field(
        None, description="The agent catalogue file agent-orchestration reads; None = default."
    )

    @model_validator(mode="after")
    def _usable_hmac_key(self) -> Self:
        try:
            signing_key(self.gateway_hmac_key, self.gateway_hmac_key_file)
        except ValueError as error:  # empty or unreadable: a bad setting, named
            raise ValueError(f"AGENT_RUNTIME_GATEWAY_HMAC_KEY / _FILE: {error}") from None
        return self

    @field_validator("gateway_jwt_algorithms")
    @classmethod
    def _public_key_algorithms(cls, algorithms: list[str]) -> list[str]:
        unusable = [a for a in algorithms if a not in _PUBLIC_KEY_ALGORITHMS]
        if unusable:
            raise ValueError(
                f"not a public-key signature algorithm: {', '.join(unusable)} "
                f"(one of {', '.join(sorted(_PUBLIC_KEY_ALGORITHMS))})"
            )
        return algorithms

    @model_validator(mode="after")
    def _jwt_complete(self) -> Self:
        if self.gateway_jwt_jwks_url and not (
            self.gateway_jwt_issuer and self.gateway_jwt_audience
        ):
            raise ValueError(
                "gateway_jwt_jwks_url needs gateway_jwt_issuer and gateway_jwt_audience"
            )
        return self
