"""A record a consumer could not handle, kept whole so it can be inspected and replayed."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, StringConstraints

from contracts.base import Contract, Id, Message
from contracts.limits import MAX_DEAD_LETTER_HEADER_BYTES, MAX_DEAD_LETTER_HEADER_NAME

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
    name: Annotated[str, StringConstraints(max_length=MAX_DEAD_LETTER_HEADER_NAME)]
    value_b64: Base64
    truncated_from_bytes: NonNegativeInt | None = Field(
        None,
        description=(
            "Set when the header was too large to keep whole in the dead letter: the original "
            "value's size in bytes. `value_b64` then holds only its first "
            f"{MAX_DEAD_LETTER_HEADER_BYTES} bytes."
        ),
    )


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
    original_truncated: bool = Field(
        False,
        description=(
            "The original record was too large to keep whole within MAX_MESSAGE_BYTES: header "
            "values cut (see `truncated_from_bytes`), header names cut to "
            f"{MAX_DEAD_LETTER_HEADER_NAME} characters, the value omitted "
            "(`original_value_b64` null) or, last, key and headers dropped; `error_message` "
            "says which. Such a dead letter cannot be replayed byte for byte."
        ),
    )
    attempts: Annotated[int, Field(ge=1)] = 1
