"""The one codec every service uses: model ↔ Kafka record (key, value, headers).

Decoding never lets a raw pydantic or JSON exception escape: every failure is a `DecodeError`
with a machine-readable `reason`, which the runtime turns into a dead letter.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from contracts.base import Message
from contracts.envelope import (
    H_CAUSATION_ID,
    H_CONTENT_TYPE,
    H_CORRELATION_ID,
    H_ID,
    H_SOURCE,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TRACEPARENT,
    H_TRACESTATE,
    H_TYPE,
    JSON_CONTENT_TYPE,
    REQUIRED_BINARY_HEADERS,
    SPEC_VERSION,
    STRUCTURED_CONTENT_TYPE,
    Envelope,
)
from contracts.limits import MAX_MESSAGE_BYTES
from contracts.registry import MESSAGE_TYPES, TOPIC_MESSAGES, type_name
from contracts.topics import TopicName

Headers = Sequence[tuple[str, bytes]]


class DecodeFailure(StrEnum):
    MALFORMED_JSON = "malformed_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    OVERSIZE = "oversize"
    MISSING_HEADER = "missing_header"


class DecodeError(Exception):
    def __init__(self, reason: DecodeFailure, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(ValueError):
    """The message cannot be published as it is: too large, or holding text that is not valid
    Unicode (a lone surrogate, which Python strings allow and JSON bytes cannot carry)."""


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Decoded:
    message: Message
    envelope: Envelope


_TOO_LONG = {"string_too_long", "too_long", "bytes_too_long"}
_NOT_AN_OBJECT = {"json_invalid", "json_type", "model_type", "model_attributes_type"}
_INSTANT = TypeAdapter(datetime)


def encode(
    message: Message,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    structured: bool = False,
) -> EncodedRecord:
    """Serialise `message` for Kafka. `structured=True` is the audit topic's mode."""
    # Straight to JSON bytes in pydantic-core: no intermediate dict, no json.dumps.
    try:
        body = message.model_dump_json().encode()
    except PydanticSerializationError as error:
        raise EncodeError(f"{type(message).__name__} cannot be serialised: {error}") from None
    occurred_at = _INSTANT.dump_python(message.occurred_at, mode="json")
    extensions = {
        H_CORRELATION_ID: correlation_id,
        H_CAUSATION_ID: causation_id,
        H_TRACEPARENT: traceparent,
        H_TRACESTATE: tracestate,
    }
    present = {name: value for name, value in extensions.items() if value is not None}
    if structured:
        attributes: dict[str, object] = {
            "specversion": SPEC_VERSION,
            "id": message.id,
            "type": type_name(type(message)),
            "source": source,
            "subject": message.session_id,
            "time": occurred_at,
            "datacontenttype": JSON_CONTENT_TYPE,
            **{_attribute(name): value for name, value in present.items()},
        }
        # The event object with the body spliced in as `data`, already serialised.
        value = _dumps(attributes)[:-1] + b',"data":' + body + b"}"
        headers = [(H_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode())]
        if traceparent is not None:
            # The same trace context as the event's attribute, also where tracing reads it.
            # Left to the publisher, a record published again (a redelivered fact) would carry
            # the new handler's trace beside the stored event's.
            headers.append((H_TRACEPARENT, traceparent.encode()))
    else:
        value = body
        headers = [
            (H_SPECVERSION, SPEC_VERSION.encode()),
            (H_ID, message.id.encode()),
            (H_TYPE, type_name(type(message)).encode()),
            (H_SOURCE, source.encode()),
            (H_SUBJECT, message.session_id.encode()),
            (H_TIME, str(occurred_at).encode()),
            (H_CONTENT_TYPE, JSON_CONTENT_TYPE.encode()),
            *((name, value.encode()) for name, value in present.items()),
        ]
    if len(value) > MAX_MESSAGE_BYTES:
        raise EncodeError(f"{len(value)} bytes exceeds MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}")
    return EncodedRecord(key=message.session_id.encode(), value=value, headers=headers)


def fits_in_a_record(message: Message) -> bool:
    """Whether `encode` can write `message` in binary mode (every topic but audit): its body
    within MAX_MESSAGE_BYTES. For a producer that must choose another outcome over an event it
    could not publish (a failed command is dead-lettered, its sender never answered)."""
    return len(message.model_dump_json().encode()) <= MAX_MESSAGE_BYTES


def decode(value: bytes | None, headers: Headers, *, topic: TopicName | None = None) -> Decoded:
    """Parse and validate one record; `topic` restricts the accepted types to that topic's."""
    if value is None:
        raise DecodeError(DecodeFailure.MALFORMED_JSON, "record has no value (tombstone)")
    if len(value) > MAX_MESSAGE_BYTES:
        raise DecodeError(
            DecodeFailure.OVERSIZE,
            f"{len(value)} bytes exceeds MAX_MESSAGE_BYTES={MAX_MESSAGE_BYTES}",
        )
    header_map = _header_map(headers)
    if header_map.get(H_CONTENT_TYPE, "").startswith(STRUCTURED_CONTENT_TYPE):
        envelope, body = _structured(value)
        model = _model(envelope, topic)
        if not isinstance(body, dict):
            raise DecodeError(DecodeFailure.MALFORMED_JSON, "body must be a JSON object")
        message = _validate(model, lambda: model.model_validate(body))
    else:
        # Binary mode, every topic but audit: the body is validated from its bytes in
        # pydantic-core, without a json.loads dict in between.
        envelope = _binary_envelope(header_map)
        model = _model(envelope, topic)
        message = _validate(model, lambda: model.model_validate_json(value))
    if "type" not in message.model_fields_set:  # the default must not stand in for the body's
        raise DecodeError(
            DecodeFailure.INVALID_FIELD, f"body has no type; ce_type is {envelope.type!r}"
        )
    if message.id != envelope.id or message.session_id != envelope.subject:
        raise DecodeError(
            DecodeFailure.INVALID_FIELD, "body id/session_id differ from ce_id/ce_subject"
        )
    return Decoded(message=message, envelope=envelope)


def _model(envelope: Envelope, topic: TopicName | None) -> type[Message]:
    model = MESSAGE_TYPES.get(envelope.type)
    if model is None:
        raise DecodeError(DecodeFailure.UNKNOWN_TYPE, f"unknown ce_type {envelope.type!r}")
    if topic is not None and model not in TOPIC_MESSAGES[topic]:
        raise DecodeError(
            DecodeFailure.UNKNOWN_TYPE, f"type {envelope.type!r} is not accepted on {topic.value}"
        )
    return model


def _validate(model: type[Message], validate: Callable[[], Message]) -> Message:
    """Run `validate`; a body type other than `model`'s fails its `type` literal (invalid_field)."""
    try:
        return validate()
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] in _NOT_AN_OBJECT and not e["loc"] for e in errors):
            detail = errors[0]["msg"] if errors[0]["type"] == "json_invalid" else "not an object"
            raise DecodeError(
                DecodeFailure.MALFORMED_JSON, f"body must be a JSON object: {detail}"
            ) from None
        reason = (
            DecodeFailure.OVERSIZE
            if any(e["type"] in _TOO_LONG for e in errors)
            else DecodeFailure.INVALID_FIELD
        )
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in errors[:10]
        )
        raise DecodeError(reason, detail) from None


def _binary_envelope(header_map: dict[str, str]) -> Envelope:
    missing = [name for name in REQUIRED_BINARY_HEADERS if not header_map.get(name)]
    if missing:
        raise DecodeError(DecodeFailure.MISSING_HEADER, f"missing header(s): {', '.join(missing)}")
    if header_map[H_SPECVERSION] != SPEC_VERSION:
        raise DecodeError(
            DecodeFailure.INVALID_FIELD, f"unsupported ce_specversion {header_map[H_SPECVERSION]!r}"
        )
    return Envelope(
        id=header_map[H_ID],
        type=header_map[H_TYPE],
        source=header_map[H_SOURCE],
        subject=header_map[H_SUBJECT],
        time=_time(header_map.get(H_TIME)),
        correlation_id=header_map.get(H_CORRELATION_ID),
        causation_id=header_map.get(H_CAUSATION_ID),
        traceparent=header_map.get(H_TRACEPARENT),
        tracestate=header_map.get(H_TRACESTATE),
    )


def _structured(value: bytes) -> tuple[Envelope, object]:
    event = _loads(value)
    if not isinstance(event, dict):
        raise DecodeError(DecodeFailure.MALFORMED_JSON, "structured CloudEvent must be an object")
    missing = [
        k for k in ("specversion", "id", "type", "source", "subject", "data") if k not in event
    ]
    if missing:
        raise DecodeError(
            DecodeFailure.MISSING_HEADER, f"missing attribute(s): {', '.join(missing)}"
        )
    if event["specversion"] != SPEC_VERSION:
        raise DecodeError(DecodeFailure.INVALID_FIELD, "unsupported specversion")

    def text(name: str) -> str | None:
        item = event.get(name)
        return item if isinstance(item, str) else None

    envelope = Envelope(
        id=str(event["id"]),
        type=str(event["type"]),
        source=str(event["source"]),
        subject=str(event["subject"]),
        time=_time(text("time")),
        correlation_id=text(_attribute(H_CORRELATION_ID)),
        causation_id=text(_attribute(H_CAUSATION_ID)),
        traceparent=text(H_TRACEPARENT),
        tracestate=text(H_TRACESTATE),
    )
    return envelope, event["data"]


def _attribute(header: str) -> str:
    return header.removeprefix("ce_")


def _header_map(headers: Headers) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, raw in headers:
        if not name.isascii() and not _is_utf8(name):
            # A name whose bytes are not UTF-8 arrives with them as surrogate escapes
            # (services/runtime/header_names.py).
            raise DecodeError(DecodeFailure.INVALID_FIELD, f"header name {name!r} is not UTF-8")
        try:
            result[name.lower()] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            raise DecodeError(
                DecodeFailure.INVALID_FIELD, f"header {name!r} is not UTF-8"
            ) from None
    return result


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(
            DecodeFailure.INVALID_FIELD, f"ce_time {value!r} is not RFC 3339"
        ) from None


def _loads(value: bytes) -> object:
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(DecodeFailure.MALFORMED_JSON, str(exc)) from None


def _dumps(body: object) -> bytes:
    # pydantic-core's serialiser: the bytes json.dumps(ensure_ascii=False, compact) gives for
    # these string attributes, in a fifth of the time (the audit encodes one per record).
    return to_json(body)
