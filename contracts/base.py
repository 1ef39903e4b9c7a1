"""Shared building blocks of every message model: strictness, ids, UTC timestamps."""

import hashlib
import math
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from contracts.limits import (
    MAX_ID_LENGTH,
    MAX_METADATA_ENTRIES,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_VALUE_LENGTH,
)

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
"""Printable, URL-safe identifier: session, tenant, command, message, turn, invocation ids."""

_ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and _ID_RE.fullmatch(value) is not None


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00:00-05:00 is year 10000 in UTC. A ValueError is a validation error
        # (a dead letter `invalid_field`, a 422), an OverflowError escaped it.
        raise ValueError("timestamp is out of range once in UTC") from None


# RFC 3339's date-time (section 5.6), which the published schemas declare (`format:
# date-time`). pydantic alone also took a Unix time (1700000000, "1700000000"), a space for the
# `T`, a time without seconds, an offset without its colon: a publisher that validated against
# the schemas could not send them, one that did not had them applied.
_RFC_3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc_3339_text(value: object) -> object:
    if isinstance(value, datetime):  # built in Python, not read from text
        return value
    if not isinstance(value, str) or _RFC_3339.fullmatch(value) is None:
        raise ValueError("a timestamp is RFC 3339 text: 2026-11-23T12:00:00Z")
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_rfc_3339_text), AfterValidator(_require_utc)]
"""Aware timestamps only; normalised to UTC so that every service compares like with like."""


def utc_now() -> datetime:
    return datetime.now(UTC)


_ID_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-4c55-9d0e-3a7b1f2e9c10")
_NAMESPACE_BYTES = _ID_NAMESPACE.bytes


def derive_id(kind: str, *parts: str | int) -> str:
    """A deterministic id from its causes, so a redelivered input yields the same ids.

    Idempotency downstream rests on this: the same command always produces events with the same
    ids, the same turn step always produces the same invocation id.
    """
    name = "\x1f".join([kind, *(str(p) for p in parts)])
    # uuid.uuid5(_ID_NAMESPACE, name) spelled out: the same digest, version and variant bits
    # and text, without constructing a UUID object (a third of the cost; the audit derives
    # one id per record). tests/unit/contracts compare it with uuid5.
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{kind}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _check_metadata(
    value: dict[str, str | int | float | bool],
) -> dict[str, str | int | float | bool]:
    if len(value) > MAX_METADATA_ENTRIES:
        raise ValueError(f"at most {MAX_METADATA_ENTRIES} metadata entries")
    for key, item in value.items():
        if not 0 < len(key) <= MAX_METADATA_KEY_LENGTH:
            raise ValueError(f"metadata key length must be 1..{MAX_METADATA_KEY_LENGTH}")
        if "\x00" in key:
            raise ValueError("a metadata key must not contain a NUL character")
        if not _is_unicode(key) or (isinstance(item, str) and not _is_unicode(item)):
            raise ValueError("metadata text must be valid Unicode (no lone surrogate)")
        if isinstance(item, str) and len(item) > MAX_METADATA_VALUE_LENGTH:
            raise ValueError(f"metadata value for {key!r} longer than {MAX_METADATA_VALUE_LENGTH}")
        # What the session store can keep: BSON has 64-bit integers and no use for NaN / inf.
        if (
            isinstance(item, int)
            and not isinstance(item, bool)
            and not INT64_MIN <= item <= INT64_MAX
        ):
            raise ValueError(f"metadata value for {key!r} is not a 64-bit integer")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"metadata value for {key!r} is not a finite number")
    return value


def _is_unicode(text: str) -> bool:
    # A Python string may hold a lone surrogate (json.loads of "\\ud800" makes one); JSON
    # bytes cannot carry it: a key would be replaced on the way out, a value not sent at all.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""What MongoDB (BSON) can store as an integer; Python's and JSON's integers are unbounded."""


Metadata = Annotated[
    dict[str, str | int | float | bool],
    AfterValidator(_check_metadata),
    # The same limits in the published JSON Schemas, so a publisher that validates there learns
    # of them before the service refuses the command (contracts/README.md, "Limits").
    Field(
        json_schema_extra={
            "maxProperties": MAX_METADATA_ENTRIES,
            "propertyNames": {
                "minLength": 1,
                "maxLength": MAX_METADATA_KEY_LENGTH,
                "pattern": "^[^\\u0000]*$",
            },
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": MAX_METADATA_VALUE_LENGTH},
                    {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                    # Finite only, as the model wants: 1e400 reads as infinity (JSON has
                    # no such number, a parser rounds to it), which passed a bare "number".
                    {
                        "type": "number",
                        "not": {"type": "integer"},
                        "minimum": -sys.float_info.max,
                        "maximum": sys.float_info.max,
                    },
                    {"type": "boolean"},
                ]
            },
        }
    ),
]


class Contract(BaseModel):
    """Base of every message: immutable, unknown fields refused, enums by value."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Message(Contract):
    """A message that crosses a topic keyed by session id."""

    id: Id = Field(description="Unique id of this message; equals the ce_id header.")
    session_id: Id = Field(description="The session; the Kafka key and the ce_subject header.")
    occurred_at: UtcDatetime = Field(default_factory=utc_now)
