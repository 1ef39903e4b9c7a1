"""The committed JSON Schemas and AsyncAPI document must match the models (run `make contracts`)."""

import json

import pytest

from contracts.generate import SCHEMAS_DIR, asyncapi_document, expected_files
from contracts.registry import MESSAGE_TYPES
from contracts.topics import TopicName

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
