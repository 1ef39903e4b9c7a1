"""The normalized, immutable audit record, one per fact, for observability pipelines.

On the `audit` topic it travels as a structured-mode CloudEvent (the whole event in the JSON
body, content type application/cloudevents+json) so pipelines need no Kafka header handling.
"""

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, NonNegativeInt, StringConstraints

from contracts.base import Contract, Id, Message, UtcDatetime
from contracts.limits import MAX_LLM_REQUEST_MESSAGES, MAX_TOOL_CALLS

MAX_CONTENT_PARTS: Final = MAX_LLM_REQUEST_MESSAGES * (1 + MAX_TOOL_CALLS)
"""The most parts one fact can have: an `llm.requested.v1` with every message (its content)
carrying the most tool calls (their arguments). Any valid fact must be auditable."""

ShortText = Annotated[str, StringConstraints(max_length=200)]


class AuditOutcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"
    RECORDED = "recorded"


class RedactionMode(StrEnum):
    FULL = "full"
    TRUNCATED = "truncated"
    HASHED = "hashed"


class RedactedContent(Contract):
    """Content as the redaction policy lets it out. Secrets are scrubbed before the policy
    applies, so `length` and `sha256` describe the scrubbed text (the original whenever
    `secrets_removed` is 0)."""

    mode: RedactionMode
    length: NonNegativeInt = Field(
        description="Length in characters of the content with its secrets scrubbed (the "
        "original's whenever `secrets_removed` is 0), like `sha256`."
    )
    text: str | None = Field(default=None, description="Full or truncated text, per policy.")
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    secrets_removed: NonNegativeInt = Field(
        default=0, description="How many secrets (API keys, tokens…) were replaced by a marker."
    )


class ContentPart(Contract):
    """One named piece of a fact that carries several (LLM request messages, tool arguments)."""

    name: ShortText = Field(description="Where it sits in the fact, e.g. `messages[2].content`.")
    label: ShortText | None = Field(
        default=None, description="The chat role of a message, or the tool name of a tool call."
    )
    content: RedactedContent


class AuditRecord(Message):
    """`id` is derived from the source fact's id, so a replay yields no new record ids."""

    type: Literal["audit.record.v1"] = "audit.record.v1"
    tenant_id: Id | None = None
    source_service: ShortText
    fact_type: ShortText
    fact_id: ShortText
    fact_time: UtcDatetime
    turn_id: Id | None = None
    invocation_id: Id | None = None
    outcome: AuditOutcome
    trace_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")] | None = None
    origin_topic: ShortText
    origin_partition: NonNegativeInt
    origin_offset: NonNegativeInt
    content: RedactedContent | None = None
    content_parts: Annotated[list[ContentPart], Field(max_length=MAX_CONTENT_PARTS)] = Field(
        default_factory=list
    )
    detail: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
