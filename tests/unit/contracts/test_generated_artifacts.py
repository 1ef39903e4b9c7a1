"""The committed JSON Schemas and AsyncAPI document must match the models (run `make contracts`)."""

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from contracts.audit import RedactionMode
from contracts.codec import DecodeError, EncodedRecord, decode, encode
from contracts.commands import CreateSession, SubmitToolResult, SubmitUserMessage, UpdateSession
from contracts.generate import SCHEMAS_DIR, asyncapi_document, expected_files
from contracts.limits import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_VALUE_LENGTH,
)
from contracts.registry import MESSAGE_TYPES, SENT_BY, TOPIC_MESSAGES, type_name
from contracts.signature import SIGNATURE_HEADER
from contracts.topics import DEFINITIONS, TopicCatalogue, TopicName
from services.audit.handler import AuditHandler
from services.audit.records import AuditEntry, StoredEntry
from services.audit.redaction import RedactionPolicy
from services.runtime.command_signing import sign
from services.runtime.record import Record
from tests.support.audit.conversation import Fact, conversation

pytestmark = pytest.mark.unit


def test_committed_artifacts_match_the_models() -> None:
    drifted = [
        str(path.name)
        for path, text in expected_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    stale = {p.name for p in SCHEMAS_DIR.glob("*.json")} - {f"{t}.json" for t in MESSAGE_TYPES}
    hint = "run `make contracts` and commit the result"
    assert not drifted, f"contracts drifted: {drifted}; {hint}"
    assert not stale, f"stale schemas: {sorted(stale)}; {hint}"


def test_asyncapi_has_a_channel_per_topic_and_both_sides_of_each() -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    assert set(document["channels"]) == {t.value for t in TopicName}
    for topic in TopicName:
        actions = {
            op["action"]
            for op in document["operations"].values()
            if op["channel"]["$ref"] == f"#/channels/{topic.value}"
        }
        assert actions == {"send", "receive"}, topic
    assert json.dumps(document)  # serialisable


def test_every_schema_pins_its_type() -> None:
    for name, model in MESSAGE_TYPES.items():
        schema = model.model_json_schema()
        assert schema["properties"]["type"]["const"] == name
        assert schema["additionalProperties"] is False


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_a_body_without_its_type_fails_the_published_schema_as_the_codec_refuses_it() -> None:
    command = SubmitUserMessage(
        id="c-1", session_id="s-1", tenant_id="t", message_id="m-1", content="hi"
    )
    body = json.loads(command.model_dump_json())
    schema = json.loads((SCHEMAS_DIR / f"{type_name(SubmitUserMessage)}.json").read_text())
    assert not list(_validator(schema).iter_errors(body))
    del body["type"]
    assert list(_validator(schema).iter_errors(body))
    record = encode(command, source="upstream")
    with pytest.raises(DecodeError):
        decode(json.dumps(body).encode(), record.headers)


def test_the_metadata_limits_are_in_the_published_schema() -> None:
    schema = json.loads((SCHEMAS_DIR / f"{type_name(CreateSession)}.json").read_text())
    base = json.loads(CreateSession(id="c-1", session_id="s-1", tenant_id="t").model_dump_json())
    for metadata in (
        {f"k{i}": i for i in range(MAX_METADATA_ENTRIES + 1)},
        {"k" * (MAX_METADATA_KEY_LENGTH + 1): 1},
        {"": 1},
        {"k": "v" * (MAX_METADATA_VALUE_LENGTH + 1)},
    ):
        assert list(_validator(schema).iter_errors({**base, "metadata": metadata})), metadata
        with pytest.raises(ValidationError):
            CreateSession.model_validate({**base, "metadata": metadata})
    fits = {f"k{i}": "v" * MAX_METADATA_VALUE_LENGTH for i in range(MAX_METADATA_ENTRIES)}
    assert not list(_validator(schema).iter_errors({**base, "metadata": fits}))


def test_a_metadata_number_beyond_a_double_fails_the_published_schema_as_the_model() -> None:
    # 1e400 is valid JSON that parsers read as infinity: the model refuses it (the session store
    # has no use for it), the schema's bare "number" let it through to a dead letter.
    schema = json.loads((SCHEMAS_DIR / f"{type_name(CreateSession)}.json").read_text())
    base = CreateSession(id="c-1", session_id="s-1", tenant_id="t").model_dump_json()
    for number in ("1e400", "-1e400"):
        raw = base[:-1] + f', "metadata": {{"k": {number}}}}}'
        assert list(_validator(schema).iter_errors(json.loads(raw))), number
        with pytest.raises(ValidationError):
            CreateSession.model_validate_json(raw)
    within = json.loads(base[:-1] + ', "metadata": {"k": 0.5, "m": -1e-400}}')
    assert not list(_validator(schema).iter_errors(within))


@pytest.mark.parametrize(
    "occurred_at",
    [
        1700000000,
        1.7e9,
        "1700000000",
        "2026-11-23 12:00:00Z",
        "2026-11-23T12:00Z",
        "2026-11-23T12:00:00+0100",
        "2026-11-23T12:00:00",
        "2026-11-23",
        True,
    ],
)
def test_a_timestamp_outside_rfc_3339_is_refused_by_the_model_as_by_the_schema(
    occurred_at: object,
) -> None:
    # The schemas say `format: date-time`; pydantic alone took a Unix time, a space for the T,
    # no seconds: applied from a publisher that skipped the schema, refused to one that did not.
    body = {
        **json.loads(CreateSession(id="c-1", session_id="s-1", tenant_id="t").model_dump_json())
    }
    body["occurred_at"] = occurred_at
    with pytest.raises(ValidationError):
        CreateSession.model_validate_json(json.dumps(body))


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-11-23T12:00:00Z", "2026-11-23t12:00:00.123456z", "2026-11-23T13:00:00.5+01:00"],
)
def test_rfc_3339_timestamps_are_read_as_utc(occurred_at: str) -> None:
    body = {
        **json.loads(CreateSession(id="c-1", session_id="s-1", tenant_id="t").model_dump_json())
    }
    body["occurred_at"] = occurred_at
    read = CreateSession.model_validate_json(json.dumps(body)).occurred_at
    assert read.utcoffset() == timedelta(0)
    assert (read.year, read.month, read.day, read.hour) == (2026, 11, 23, 12)


@pytest.mark.parametrize("is_error", [0, 1, 1.0, "true", "yes", None])
def test_a_tool_results_is_error_is_a_json_boolean_for_the_model_as_for_the_schema(
    is_error: object,
) -> None:
    schema = json.loads((SCHEMAS_DIR / f"{type_name(SubmitToolResult)}.json").read_text())
    body = json.loads(
        SubmitToolResult(
            id="c-1", session_id="s-1", tenant_id="t", tool_call_id="call_1", content="r"
        ).model_dump_json()
    )
    body["is_error"] = is_error
    assert list(_validator(schema).iter_errors(body))
    with pytest.raises(ValidationError):
        SubmitToolResult.model_validate_json(json.dumps(body))


def test_an_update_with_nothing_to_update_fails_the_published_schema_as_the_model() -> None:
    schema = json.loads((SCHEMAS_DIR / f"{type_name(UpdateSession)}.json").read_text())
    base = {"type": type_name(UpdateSession), "id": "c-1", "session_id": "s-1", "tenant_id": "t"}
    for nothing in ({}, {"title": None, "description": None, "mid_turn_policy": None}):
        assert list(_validator(schema).iter_errors({**base, **nothing})), nothing
        with pytest.raises(ValidationError):
            UpdateSession.model_validate({**base, **nothing})
    for something in (
        {"title": ""},
        {"description": "d", "title": None},
        {"mid_turn_policy": "reject"},
    ):
        assert not list(_validator(schema).iter_errors({**base, **something})), something
        UpdateSession.model_validate({**base, **something})


def test_an_audit_record_on_the_wire_matches_its_asyncapi_message() -> None:
    document = asyncapi_document()
    message = document["components"]["messages"]["AuditRecord"]
    fact = conversation("s-audit")[0]
    assert isinstance(fact, Fact)
    encoded = fact.encoded()
    published: list[EncodedRecord] = []

    class Log:
        async def record(self, entry: AuditEntry) -> StoredEntry:
            return StoredEntry(entry=entry, published=False)

        def note_published(self, record_id: str) -> None:
            pass

    class Sink:
        async def publish(self, record: EncodedRecord) -> None:
            published.append(record)

    topics = TopicCatalogue()
    handler = AuditHandler(
        topics=topics, policy=RedactionPolicy(mode=RedactionMode.HASHED), log=Log(), sink=Sink()
    )
    record = Record(
        topics.name(fact.topic), 0, 0, encoded.key, encoded.value, tuple(encoded.headers)
    )
    asyncio.run(handler(record))
    [audit] = published
    root = {"allOf": [message["payload"]], "components": document["components"]}
    assert not list(_validator(root).iter_errors(json.loads(audit.value)))
    headers = {name: value.decode() for name, value in audit.headers}
    assert not list(_validator(message["headers"]).iter_errors(headers))


def test_every_header_a_publisher_of_commands_writes_is_in_its_asyncapi_message() -> None:
    # The gateway (and the CLI) sign commands for session-commands' source check and carry the
    # caller's tracestate and baggage: a consumer in another language reads the headers from
    # the AsyncAPI document, so each one the publishers write must be declared there.
    document = asyncapi_document()
    command = CreateSession(id="c-1", session_id="s-1", tenant_id="acme")
    record = encode(
        command,
        source="gateway",
        correlation_id="req-1",
        causation_id="c-0",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate="vendor=abc",
    )
    record.headers.append(("baggage", b"tier=gold"))
    sign(record, b"key")
    message = document["components"]["messages"][type(command).__name__]
    assert {name for name, _ in record.headers} <= set(message["headers"]["properties"])
    headers = {name: value.decode() for name, value in record.headers}
    assert not list(_validator(message["headers"]).iter_errors(headers))
    for topic in TopicName:
        for model in TOPIC_MESSAGES[topic]:
            declared = document["components"]["messages"][model.__name__]["headers"]
            # Only commands are signed: session-commands checks no other topic.
            assert (SIGNATURE_HEADER in declared["properties"]) == (topic is TopicName.COMMANDS)


def test_each_producer_of_turns_sends_its_own_types_and_together_all_of_them() -> None:
    operations = asyncapi_document()["operations"]
    sent: set[str] = set()
    for (topic, service), models in SENT_BY.items():
        assert service in DEFINITIONS[topic].producers
        refs = operations[f"{service.value}.send.{topic.value}"]["messages"]
        names = {ref["$ref"].rsplit("/", 1)[1] for ref in refs}
        assert names == {m.__name__ for m in models}
        sent |= names
    assert sent == {m.__name__ for m in TOPIC_MESSAGES[TopicName.TURNS]}


@pytest.mark.parametrize(
    "metadata",
    [{"k": 2**63}, {"k": -(2**63) - 1}, {"k": float("inf")}, {"k": float("nan")}, {"a\x00b": 1}],
)
def test_metadata_the_session_store_cannot_keep_is_refused(metadata: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CreateSession(id="c-1", session_id="s-1", tenant_id="t", metadata=metadata)


def test_the_published_schema_bounds_metadata_integers_and_refuses_nul_in_keys() -> None:
    schema = json.loads((SCHEMAS_DIR / f"{type_name(CreateSession)}.json").read_text())
    base = json.loads(CreateSession(id="c-1", session_id="s-1", tenant_id="t").model_dump_json())
    for metadata in ({"k": 2**63}, {"a\x00b": 1}):
        assert list(_validator(schema).iter_errors({**base, "metadata": metadata})), metadata
    assert not list(_validator(schema).iter_errors({**base, "metadata": {"k": 2**63 - 1}}))
