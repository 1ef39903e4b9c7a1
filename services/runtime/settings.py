"""Settings every service shares; a service subclasses `RuntimeSettings` for its own.

One env prefix (`AGENT_RUNTIME_`) and `.env` support. Values are validated when the settings
object is built, so a bad deployment fails at start with a message naming the variable.
"""

import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal, Self

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from pymongo import uri_parser
from pymongo.errors import PyMongoError

from contracts.topics import TopicCatalogue
from services.runtime.kafka_security import KafkaSecuritySettings
from services.runtime.uri_redaction import redact_uri_credentials

ENV_PREFIX = "AGENT_RUNTIME_"


def prefixed_name(service: str) -> Callable[[dict[str, Any]], str]:
    """Default of a consumer group setting: the topic prefix + the service's name.

    Two deployments sharing a cluster (e.g. `staging.` and `prod.` prefixes) then never join
    each other's groups, and KEDA's triggers can name the group from the same prefix.
    """
    return lambda settings: f"{settings['topic_prefix']}{service}"


class RuntimeSettings(KafkaSecuritySettings):
    """Kafka connection and security fields: `KafkaSecuritySettings` (kafka_security.py)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # `LLM_BASE_URL=` in a shell or .env means "not set", not "the empty URL".
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        # A bad value is reported by the variable's name, never echoed: it may be a URI with
        # its password or a key.
        hide_input_in_errors=True,
        # `inf` or `nan` parse as floats and pass `gt=0`: an interval of `inf` is a job that
        # never runs, a retention of `inf` crashed at start; every setting is a finite number.
        allow_inf_nan=False,
    )

    mongodb_uri: str = Field("mongodb://127.0.0.1:27017", pattern=r"^mongodb(\+srv)?://")
    mongodb_database: str = Field("agent_runtime", min_length=1, max_length=63)
    topic_prefix: str = Field("agent-runtime.", pattern=r"^[A-Za-z0-9._-]*$")
    dead_letter_topic: str | None = Field(
        None, description="Full name; default: topic_prefix + 'dead-letters'."
    )
    # Durability of the topics `python -m services.admin.topics` creates (3 / 2 in production).
    topic_replication_factor: PositiveInt = Field(
        1, description="Replicas per partition of every topic; 1 = single local broker."
    )
    topic_min_insync_replicas: PositiveInt = Field(
        1, description="min.insync.replicas: replicas that must have a record before acks=all."
    )

    # Consumer
    max_in_flight: PositiveInt = Field(
        256, description="Records received but not finished, per consumer; above it, pause."
    )
    resume_ratio: float = Field(
        0.75, gt=0, le=1, description="Resume fetching once in-flight <= max_in_flight * ratio."
    )
    commit_interval_s: PositiveFloat = 1.0
    drain_timeout_s: PositiveFloat = Field(
        20.0, description="Shutdown: how long in-flight handlers may finish before we give up."
    )
    rebalance_drain_timeout_s: PositiveFloat = Field(
        10.0, description="Revoke: how long in-flight handlers of revoked partitions may finish."
    )
    max_queued_per_key: PositiveInt = Field(
        64, description="Records waiting for one key before its partition is paused."
    )
    fetch_max_records: PositiveInt = Field(
        100, description="Most records handed to the consumer per fetch (aiokafka getmany)."
    )
    fetch_wait_ms: PositiveInt = Field(
        100,
        le=1_000,
        description=(
            "How long an idle fetch waits for records before polling again (a record that"
            " arrives ends the wait at once: it bounds idle wake-ups, not latency)."
        ),
    )
    backpressure_block_s: PositiveFloat = Field(
        5.0, description="At the bound, hold the fetch loop this long before pausing partitions."
    )
    retry_initial_backoff_s: PositiveFloat = 0.1
    retry_max_backoff_s: PositiveFloat = 30.0
    retry_max_attempts: PositiveInt | None = Field(
        None,
        description="Attempts before a RetryableError record is dead-lettered; None = forever.",
    )
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    instance_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Stable per replica (pod name, StatefulSet ordinal); unique in the group.",
    )
    static_membership: bool = Field(
        True,
        description="Join as a static member (group_instance_id = instance_name) when named.",
    )
    session_timeout_ms: PositiveInt = 20_000
    heartbeat_interval_ms: PositiveInt = 1_000
    max_poll_interval_ms: PositiveInt = 300_000
    kafka_request_timeout_ms: PositiveInt = Field(
        40_000,
        description="How long a publish waits for a partition leader before the broker counts "
        "as unavailable (the record is then retried).",
    )

    # Producer: concurrent handlers' records share produce requests (docs/performance.md).
    producer_linger_ms: int = Field(
        1, ge=0, le=1_000, description="How long a produce batch waits for more records."
    )
    producer_max_batch_bytes: PositiveInt = Field(
        262_144, description="Largest produce batch per partition (aiokafka's max_batch_size)."
    )

    # Health, telemetry, logs
    health_host: str = "0.0.0.0"  # probes come from the kubelet, not loopback
    health_port: int = Field(8080, ge=0, le=65_535, description="0 = pick a free port.")
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP base URL for traces, e.g. http://collector:4318; None = "
        "OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT if set, else no export.",
    )
    console_telemetry: bool = Field(False, description="Print spans to stdout (local runs).")
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="uvloop (C, libuv): less CPU per callback; `asyncio`: the standard loop.",
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr() and str() of settings (a debugger, a log line, an exception) show a URI with
        # its credentials as `user:***@` (MongoDB, LLM_BASE_URL); secrets are SecretStr anyway.
        for name, value in super().__repr_args__():
            yield name, redact_uri_credentials(value) if isinstance(value, str) else value

    def client_id(self, service: str) -> str:
        """Kafka `client.id` of a service's clients: names it in broker logs, metrics, quotas."""
        return f"{self.topic_prefix}{service}"

    @property
    def group_instance_id(self) -> str | None:
        """KIP-345 static membership: a restarted instance gets its partitions back without a
        group-wide rebalance, provided it rejoins within the session timeout."""
        return self.instance_name if self.static_membership else None

    @property
    def topics(self) -> TopicCatalogue:
        """This deployment's topics (`topics.name(TopicName.COMMANDS)` →
        `agent-runtime.commands`, and their durability): the one catalogue services, CLI,
        admin and tests use."""
        return TopicCatalogue(
            prefix=self.topic_prefix,
            dead_letter_topic=self.dead_letter_topic,
            replication_factor=self.topic_replication_factor,
            min_insync_replicas=self.topic_min_insync_replicas,
        )

    @field_validator("mongodb_uri")
    @classmethod
    def _check_mongodb_uri(cls, value: str) -> str:
        """What PyMongo's client would refuse when it is built (a port that is not a number,
        unescaped credentials, a TLS file that does not exist), refused here instead, so that
        it stops the process as a bad setting (exit 2, the variable named, the URI never
        echoed) rather than as a traceback. PyMongo's messages name the problem, not the
        credentials. `mongodb+srv://` is left to the client: parsing it resolves DNS."""
        if value.startswith("mongodb://"):
            try:
                with warnings.catch_warnings():  # unknown options only warn, as in the client
                    warnings.simplefilter("ignore")
                    uri_parser.parse_uri(value, warn=True)
            except (ValueError, PyMongoError, OSError) as error:
                raise ValueError(f"not a usable MongoDB URI: {error}") from None
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> Self:
        if self.retry_initial_backoff_s > self.retry_max_backoff_s:
            raise ValueError("retry_initial_backoff_s must be <= retry_max_backoff_s")
        if self.backpressure_block_s * 1000 * 2 > self.max_poll_interval_ms:
            raise ValueError("backpressure_block_s must be under half of max_poll_interval_ms")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self

    @model_validator(mode="after")
    def _check_topic_durability(self) -> Self:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError("topic_min_insync_replicas must be <= topic_replication_factor")
        return self
