"""session-commands settings: env prefix `AGENT_RUNTIME_`, like every service."""

from datetime import timedelta

from pydantic import Field, PositiveFloat, PositiveInt

from contracts.limits import MAX_CONTENT_LENGTH, MAX_CONTEXT_MESSAGES
from services.runtime.settings import RuntimeSettings, prefixed_name
from services.session_commands.command_sources import CommandSource
from services.session_commands.domain.policy import DeciderPolicy, MidTurnPolicy


class SessionCommandsSettings(RuntimeSettings):
    session_commands_consumer_group: str = Field(
        default_factory=prefixed_name("session-commands"), min_length=1, max_length=255
    )
    mid_turn_policy: MidTurnPolicy = Field(
        MidTurnPolicy.QUEUE,
        description="The default for sessions that chose none: a user message during a turn is "
        "queued, rejected, or it interrupts / replaces the turn (docs: stopping a turn).",
    )
    max_queued_messages: int = Field(10, ge=0, le=100)
    context_max_messages: int = Field(
        20, ge=1, le=MAX_CONTEXT_MESSAGES, description="Messages in a TurnStarted context."
    )
    context_max_chars: int = Field(48_000, ge=MAX_CONTENT_LENGTH, le=200_000)
    processed_command_ids: int = Field(
        1_000, ge=10, le=10_000, description="Command ids remembered per session (idempotency)."
    )
    session_cache_size: int = Field(
        2_000, ge=0, le=1_000_000, description="Session documents kept in memory (0 = none)."
    )
    message_id_window: int = Field(1_000, ge=10, le=10_000)
    session_ttl_s: PositiveFloat = Field(
        86_400.0, description="Inactivity after which the expiry job expires a session (24 h)."
    )
    expired_retention_s: PositiveFloat = Field(
        7 * 86_400.0, description="How long an expired session and its messages are kept."
    )
    expiry_interval_s: PositiveFloat = Field(300.0, description="How often the expiry job runs.")
    expiry_batch_size: PositiveInt = Field(1_000, le=100_000)
    tool_call_timeout_s: PositiveFloat = Field(
        300.0,
        le=86_400.0,
        description="How long a round of tool calls waits for its results and approvals before "
        "the turn fails with `tool_deadline_exceeded` (docs/tools.md).",
    )
    tool_deadline_interval_s: PositiveFloat = Field(
        5.0, description="How often the job looks for tool rounds past their deadline."
    )
    command_sources: dict[str, CommandSource] | None = Field(
        None,
        description="Which `source` may publish commands for which tenants, with an optional "
        "HMAC key (JSON; docs/security.md). None = not enforced: any source, any tenant.",
    )
    crash_after_writes: PositiveInt | None = Field(
        None,
        description="TEST HOOK: exit the process right after the N-th session write, before "
        "its events are published (crash-safety tests). Never set in production.",
    )

    def decider_policy(self) -> DeciderPolicy:
        return DeciderPolicy(
            mid_turn=self.mid_turn_policy,
            max_queued_messages=self.max_queued_messages,
            context_max_messages=self.context_max_messages,
            context_max_chars=self.context_max_chars,
            message_id_window=self.message_id_window,
            tool_call_timeout_s=self.tool_call_timeout_s,
        )

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(seconds=self.session_ttl_s)

    @property
    def expired_retention(self) -> timedelta:
        return timedelta(seconds=self.expired_retention_s)
