"""Generate the committed artifacts: one JSON Schema per message and the AsyncAPI 3.0 document.

Run `make contracts` (python -m contracts.generate) after changing a model; the drift test in
tests/unit/contracts fails while the committed files differ from what this produces.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from contracts.base import Contract
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
    SPEC_VERSION,
    STRUCTURED_CONTENT_TYPE,
)
from contracts.read_model import READ_MODEL_TYPES, READ_MODEL_VERSION
from contracts.registry import MESSAGE_TYPES, SENT_BY, TOPIC_MESSAGES, MessageType, type_name
from contracts.signature import SIGNATURE_HEADER
from contracts.stream_events import CONTROL_EVENTS, STREAM_EVENTS, stream_schema
from contracts.topics import DEFINITIONS, TopicCatalogue, TopicName

CONTRACTS_DIR = Path(__file__).parent
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.json"
READ_MODEL_DIR = SCHEMAS_DIR / "read-model"
STREAM_DIR = SCHEMAS_DIR / "stream"
SCHEMA_BASE_URI = "https://agent-runtime.example/schemas/"


H_BAGGAGE = "baggage"
"""W3C baggage: a record published while handling one that carried it carries it on
(services/runtime/service_runtime.py, docs/operations.md)."""


def message_schema(model: MessageType) -> dict[str, Any]:
    schema = _type_required(model.model_json_schema(mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{type_name(model)}.json",
        **schema,
    }


def _type_required(schema: dict[str, Any]) -> dict[str, Any]:
    """A body's `type` has a default in the models (Python code need not spell it), but a
    record without it is refused (contracts/codec.py: the body's type must equal ce_type), so
    the published schema requires it."""
    required = list(schema.get("required", []))
    if "type" in schema.get("properties", {}) and "type" not in required:
        schema["required"] = ["type", *required]
    return schema


def _text(description: str, const: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string", "description": description}
    if const is not None:
        item["const"] = const
    return item


_TRACE_HEADERS: dict[str, Any] = {
    H_TRACEPARENT: _text("W3C trace context"),
    H_TRACESTATE: _text("W3C trace context, vendor part (the gateway's commands, when given one)"),
    H_BAGGAGE: _text("W3C baggage, carried on from the record being handled (when it had one)"),
}


def _headers_schema(model: MessageType) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [H_ID, H_TYPE, H_SOURCE, H_SPECVERSION, H_SUBJECT],
        "properties": {
            H_SPECVERSION: _text("CloudEvents version", SPEC_VERSION),
            H_ID: _text("equals the body's id"),
            H_TYPE: _text("the versioned message type", type_name(model)),
            H_SOURCE: _text("the publishing service or system"),
            H_SUBJECT: _text("the session id; equals the body's session_id and the key"),
            H_TIME: _text("RFC 3339 UTC timestamp"),
            H_CONTENT_TYPE: _text("the body's media type", JSON_CONTENT_TYPE),
            H_CORRELATION_ID: _text("id of the upstream command that began this chain"),
            H_CAUSATION_ID: _text("id of the message that directly caused this one"),
            **_TRACE_HEADERS,
            **(_SIGNATURE_HEADERS if model in TOPIC_MESSAGES[TopicName.COMMANDS] else {}),
        },
    }


_SIGNATURE_HEADERS: dict[str, Any] = {
    # Only on commands: session-commands checks it there, for a source configured with a key.
    SIGNATURE_HEADER: {
        **_text(
            "`hmac-sha256=<hex>`: the HMAC-SHA256 of the record value under the source's key; "
            "required from a source with a key in AGENT_RUNTIME_COMMAND_SOURCES "
            "(docs/security.md)"
        ),
        "pattern": "^hmac-sha256=[0-9A-Fa-f]{64}$",
    },
}


def _structured_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": [H_CONTENT_TYPE],
        "properties": {
            H_CONTENT_TYPE: _text("a structured CloudEvent", STRUCTURED_CONTENT_TYPE),
            **_TRACE_HEADERS,
        },
    }


def _structured_payload(model: MessageType) -> dict[str, Any]:
    """The audit topic's value: a structured CloudEvent whose `data` is the message."""
    return {
        "type": "object",
        "required": [
            "specversion",
            "id",
            "type",
            "source",
            "subject",
            "time",
            "datacontenttype",
            "data",
        ],
        "properties": {
            "specversion": _text("CloudEvents version", SPEC_VERSION),
            "id": _text("equals data.id"),
            "type": _text("the versioned message type", type_name(model)),
            "source": _text("the publishing service"),
            "subject": _text("the session id; equals data.session_id and the key"),
            "time": {
                **_text("RFC 3339 UTC timestamp; equals data.occurred_at"),
                "format": "date-time",
            },
            "datacontenttype": _text("the media type of data", JSON_CONTENT_TYPE),
            "correlationid": _text("id of the upstream command that began this chain"),
            "causationid": _text("id of the message that directly caused this one"),
            "traceparent": _text("W3C trace context"),
            "tracestate": _text("W3C trace context, vendor part"),
            "data": {"$ref": f"#/components/schemas/{model.__name__}"},
        },
    }


def asyncapi_document(catalogue: TopicCatalogue | None = None) -> dict[str, Any]:
    catalogue = catalogue or TopicCatalogue()
    models = list(MESSAGE_TYPES.values())
    _, definitions = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    for model in models:
        _type_required(schemas[model.__name__])
    messages: dict[str, Any] = {}
    for model in models:
        structured = model in TOPIC_MESSAGES[TopicName.AUDIT]
        messages[model.__name__] = {
            "name": type_name(model),
            "title": model.__name__,
            "summary": (model.__doc__ or "").strip().split("\n")[0],
            "contentType": STRUCTURED_CONTENT_TYPE if structured else JSON_CONTENT_TYPE,
            "headers": _structured_headers_schema() if structured else _headers_schema(model),
            "payload": (
                _structured_payload(model)
                if structured
                else {"$ref": f"#/components/schemas/{model.__name__}"}
            ),
            "bindings": {"kafka": {"key": {"type": "string", "description": "session id"}}},
        }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TopicName:
        spec = catalogue.spec(topic)
        definition = DEFINITIONS[topic]
        refs = {
            m.__name__: {"$ref": f"#/components/messages/{m.__name__}"}
            for m in TOPIC_MESSAGES[topic]
        }
        channels[topic.value] = {
            "address": spec.name,
            "description": definition.purpose,
            "messages": refs,
            "bindings": {
                "kafka": {
                    "topic": spec.name,
                    "partitions": spec.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": [definition.cleanup_policy],
                        "retention.ms": definition.retention_ms,
                    },
                }
            },
        }
        for action, services in (("send", definition.producers), ("receive", definition.consumers)):
            for service in services:
                sent = SENT_BY.get((topic, service)) if action == "send" else None
                names = [m.__name__ for m in sent] if sent else list(refs)
                operations[f"{service.value}.{action}.{topic.value}"] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{topic.value}"},
                    "summary": f"{service.value} {action}s {topic.value}",
                    "messages": [
                        {"$ref": f"#/channels/{topic.value}/messages/{name}"} for name in names
                    ],
                }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Agent Runtime",
            "version": "1.0.0",
            "description": "Kafka contracts of the multi-agent LLM conversation runtime. "
            "Every record is keyed by session id; binary-mode CloudEvents headers "
            "except on the audit topic (structured mode).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "make infra-up"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files() -> dict[Path, str]:
    files = {
        SCHEMAS_DIR / f"{name}.json": render(message_schema(model))
        for name, model in MESSAGE_TYPES.items()
    }
    files[ASYNCAPI_PATH] = render(asyncapi_document())
    for model in READ_MODEL_TYPES:
        name = f"{model.__name__}.v{READ_MODEL_VERSION}"
        files[READ_MODEL_DIR / f"{name}.json"] = render(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": f"{SCHEMA_BASE_URI}read-model/{name}.json",
                **model.model_json_schema(mode="serialization"),
            }
        )
    # The gateway's Server-Sent Events (contracts/stream_events.py): one schema per `event:`.
    stream_models: dict[str, type[Contract]] = {
        name: model for model, name in STREAM_EVENTS.items()
    }
    stream_models.update(CONTROL_EVENTS)
    for name, stream_model in stream_models.items():
        files[STREAM_DIR / f"{name}.json"] = render(stream_schema(name, stream_model))
    return files


def main() -> int:
    READ_MODEL_DIR.mkdir(parents=True, exist_ok=True)
    STREAM_DIR.mkdir(parents=True, exist_ok=True)
    files = expected_files()
    for stale in set(SCHEMAS_DIR.glob("*.json")) - set(files):
        stale.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(files) - 1} schemas to {SCHEMAS_DIR} and {ASYNCAPI_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
