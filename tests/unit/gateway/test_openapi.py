"""The committed OpenAPI document is the app's own (run `make contracts` after a change)."""

import pytest

from services.gateway.openapi import OPENAPI_PATH, openapi_document, render

pytestmark = pytest.mark.unit


def test_committed_openapi_matches_the_app() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(openapi_document()), (
        "contracts/openapi.json drifted; run `make contracts` and commit the result"
    )


def test_every_v1_operation_requires_an_api_key_and_documents_problems() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/v1/"):
                continue
            assert operation["security"] == [{"apiKey": []}], (method, path)
            for status in ("401", "429", "503"):
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)


def test_a_problem_is_described_under_the_media_type_it_is_sent_with() -> None:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if "application/problem+json" in content:
                    assert content == {"application/problem+json": problem}, (method, path, status)


def test_a_write_declares_the_403_of_a_refused_command_source() -> None:
    operations = openapi_document()["paths"]
    for path, method in (("/v1/sessions", "post"), ("/v1/sessions/{session_id}/messages", "post")):
        assert "403" in operations[path][method]["responses"], (method, path)
