"""A record a consumer could not handle, kept whole so it can be inspected and replayed."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, StringConstraints

from contracts.base import Contract, Id, Message

Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$")]


class DeadLetterReason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    OVERSIZE = "oversize"
    MISSING_HEADER = "missing_header"
    HANDLER_ERROR = "handler_error"
    RETRIES_EXHAUSTED = "retries_exhausted"


class OriginalHeader(Contract):
    name: Annotated[str, StringConstraints(max_length=256)]
    value_b64: Base64


class DeadLetter(Message):
    """`session_id` is the original key when it is a valid id, else `unknown`."""

    type: Literal["dead_letter.v1"] = "dead_letter.v1"
    origin_topic: Annotated[str, StringConstraints(min_length=1, max_length=249)]
    origin_partition: NonNegativeInt
    origin_offset: NonNegativeInt
    consumer_group: Annotated[str, StringConstraints(max_length=255)]
    source_service: Id
    reason: DeadLetterReason
    error_class: Annotated[str, StringConstraints(max_length=200)]
    error_message: Annotated[str, StringConstraints(max_length=4_000)]
    original_key_b64: Base64 | None = None
    original_value_b64: Base64 | None = None
    original_headers: list[OriginalHeader] = Field(default_factory=list)
    attempts: Annotated[int, Field(ge=1)] = 1
