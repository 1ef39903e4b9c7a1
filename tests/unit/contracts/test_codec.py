import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.agents import AgentType
from contracts.base import ID_PATTERN, Message, derive_id
from contracts.codec import DecodeError, DecodeFailure, decode, encode
from contracts.commands import CreateSession, SubmitUserMessage, SwitchAgent
from contracts.limits import MAX_CONTENT_LENGTH, MAX_ID_LENGTH, MAX_MESSAGE_BYTES
from contracts.registry import MESSAGE_TYPES, TOPIC_OF_TYPE
from contracts.topics import TopicName
from tests.support.contracts.samples import AT, every_message

pytestmark = pytest.mark.unit


def test_every_message_type_has_a_sample() -> None:
    assert {m.type for m in every_message()} == set(MESSAGE_TYPES)  # type: ignore[attr-defined]


@pytest.mark.parametrize("message", every_message(), ids=lambda m: m.type)
def test_every_model_round_trips_through_the_codec(message: Message) -> None:
    topic = TOPIC_OF_TYPE[message.type]  # type: ignore[attr-defined]
    record = encode(
        message,
        source="test",
        correlation_id="corr-1",
        causation_id="cause-1",
        structured=topic is TopicName.AUDIT,
    )
    decoded = decode(record.value, record.headers, topic=topic)
    assert decoded.message == message
    assert record.key == message.session_id.encode()
    assert decoded.envelope.id == message.id
    assert decoded.envelope.subject == message.session_id
    assert decoded.envelope.correlation_id == "corr-1"
    assert decoded.envelope.causation_id == "cause-1"


ids = st.from_regex(ID_PATTERN, fullmatch=True).filter(lambda s: len(s) <= MAX_ID_LENGTH)
contents = st.text(min_size=1, max_size=2_000)


@given(
    id_=ids,
    session_id=ids,
    tenant_id=ids,
    message_id=ids,
    content=contents,
    author=st.none() | st.text(min_size=1, max_size=100),
    when=st.datetimes(timezones=st.timezones()),
)
def test_generated_user_messages_round_trip(
    id_: str,
    session_id: str,
    tenant_id: str,
    message_id: str,
    content: str,
    author: str | None,
    when: object,
) -> None:
    message = SubmitUserMessage(
        id=id_,
        session_id=session_id,
        tenant_id=tenant_id,
        message_id=message_id,
        content=content,
        author_name=author,
        occurred_at=when,
    )
    record = encode(message, source="hypothesis")
    assert decode(record.value, record.headers, topic=TopicName.COMMANDS).message == message


@given(
    session_id=ids,
    title=st.text(max_size=200),
    agent=st.sampled_from(AgentType),
    metadata=st.dictionaries(
        # What the contract allows: no NUL in a key, 64-bit integers (what BSON keeps). No lone
        # surrogates: text from the wire cannot hold one (the JSON parser refuses the escape).
        st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            min_size=1,
            max_size=64,
        ),
        st.text(max_size=100) | st.integers(-(2**63), 2**63 - 1) | st.booleans(),
        max_size=8,
    ),
)
def test_generated_session_creations_round_trip(
    session_id: str, title: str, agent: AgentType, metadata: dict[str, str | int | bool]
) -> None:
    message = CreateSession(
        id=derive_id("cmd", session_id),
        session_id=session_id,
        tenant_id="t",
        title=title,
        initial_agent=agent,
        metadata=metadata,
    )
    record = encode(message, source="hypothesis")
    assert decode(record.value, record.headers).message == message


def _valid() -> tuple[dict[str, object], list[tuple[str, bytes]]]:
    message = SwitchAgent(
        id="c-1",
        session_id="s-1",
        tenant_id="acme",
        target_agent=AgentType.CODER,
        occurred_at=AT,
    )
    record = encode(message, source="test")
    return json.loads(record.value), record.headers


def _reason(body: object, headers: list[tuple[str, bytes]]) -> DecodeFailure:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(DecodeError) as caught:
        decode(raw, headers, topic=TopicName.COMMANDS)
    return caught.value.reason


def _with_header(
    headers: list[tuple[str, bytes]], name: str, value: bytes
) -> list[tuple[str, bytes]]:
    return [(n, value if n == name else v) for n, v in headers]


def test_unknown_type_is_refused() -> None:
    body, headers = _valid()
    body["type"] = "session.teleport.v1"
    headers = _with_header(headers, "ce_type", b"session.teleport.v1")
    assert _reason(body, headers) is DecodeFailure.UNKNOWN_TYPE


def test_type_of_another_topic_is_refused() -> None:
    body, headers = _valid()
    body["type"] = "turn.fail.v1"
    headers = _with_header(headers, "ce_type", b"turn.fail.v1")
    assert _reason(body, headers) is DecodeFailure.UNKNOWN_TYPE


def test_body_type_differing_from_header_is_refused() -> None:
    body, headers = _valid()
    body["type"] = "session.close.v1"
    assert _reason(body, headers) is DecodeFailure.INVALID_FIELD


def test_extra_field_is_refused() -> None:
    body, headers = _valid()
    body["priority"] = "high"
    assert _reason(body, headers) is DecodeFailure.INVALID_FIELD


def test_an_unknown_agent_name_decodes_for_the_session_to_refuse() -> None:
    body, headers = _valid()
    body["target_agent"] = "wizard"
    decoded = decode(json.dumps(body).encode(), headers).message
    assert isinstance(decoded, SwitchAgent)
    assert decoded.target_agent == "wizard"


@pytest.mark.parametrize("name", ["", "w" * 65])
def test_an_empty_or_overlong_agent_name_is_refused(name: str) -> None:
    body, headers = _valid()
    body["target_agent"] = name
    assert _reason(body, headers) in {DecodeFailure.INVALID_FIELD, DecodeFailure.OVERSIZE}


def test_oversize_content_is_refused() -> None:
    message = SubmitUserMessage(
        id="c-1", session_id="s-1", tenant_id="acme", message_id="m-1", content="x"
    )
    record = encode(message, source="test")
    body = json.loads(record.value)
    body["content"] = "x" * (MAX_CONTENT_LENGTH + 1)
    assert _reason(body, record.headers) is DecodeFailure.OVERSIZE


def test_oversize_record_is_refused_before_parsing() -> None:
    _, headers = _valid()
    assert _reason(b"x" * (MAX_MESSAGE_BYTES + 1), headers) is DecodeFailure.OVERSIZE


@pytest.mark.parametrize("bad_id", ["", "has space", "ü-umlaut", "-leading-dash", "x" * 129])
def test_bad_id_is_refused(bad_id: str) -> None:
    body, headers = _valid()
    body["tenant_id"] = bad_id
    assert _reason(body, headers) in {DecodeFailure.INVALID_FIELD, DecodeFailure.OVERSIZE}


def test_naive_timestamp_is_refused() -> None:
    body, headers = _valid()
    body["occurred_at"] = "2026-11-23T12:00:00"
    assert _reason(body, headers) is DecodeFailure.INVALID_FIELD


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_a_timestamp_beyond_the_calendar_once_in_utc_is_an_invalid_field(moment: str) -> None:
    # Valid RFC 3339, but year 10000 (or 0) in UTC: an OverflowError escaped decoding and the
    # dead letter said `handler_error` instead of `invalid_field`.
    body, headers = _valid()
    body["occurred_at"] = moment
    assert _reason(body, headers) is DecodeFailure.INVALID_FIELD


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_malformed_json_is_refused(raw: bytes) -> None:
    _, headers = _valid()
    assert _reason(raw, headers) is DecodeFailure.MALFORMED_JSON


@pytest.mark.parametrize(
    "missing", ["ce_id", "ce_type", "ce_source", "ce_specversion", "ce_subject"]
)
def test_missing_header_is_refused(missing: str) -> None:
    body, headers = _valid()
    assert (
        _reason(body, [(n, v) for n, v in headers if n != missing]) is DecodeFailure.MISSING_HEADER
    )


def test_header_and_body_ids_must_agree() -> None:
    body, headers = _valid()
    assert _reason(body, _with_header(headers, "ce_subject", b"s-2")) is DecodeFailure.INVALID_FIELD


def test_tombstone_is_refused() -> None:
    _, headers = _valid()
    with pytest.raises(DecodeError) as caught:
        decode(None, headers)
    assert caught.value.reason is DecodeFailure.MALFORMED_JSON


def test_derived_ids_are_deterministic_and_valid() -> None:
    first = derive_id("event", "c-1", 0)
    assert first == derive_id("event", "c-1", 0)
    assert first != derive_id("event", "c-1", 1)
    CreateSession(id=first, session_id=first, tenant_id="t")
