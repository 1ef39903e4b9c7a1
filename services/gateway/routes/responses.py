"""The problem responses every /v1 route may give, for the OpenAPI document."""

from typing import Any

from services.gateway.problems import PROBLEM_CONTENT_TYPE, Problem


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # 403: a write the pipeline's command-source policy refuses (docs/gateway.md).
    common = (400, 401, 403, 413, 422, 429, 503)
    return {
        status: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}}
        for status in sorted({*common, *statuses})
    }


def declare_unsupported_media_type(operation: dict[str, Any]) -> None:
    """A route that reads a JSON body answers 415 to a body of another media type (errors.py);
    the response is declared once here for every such route instead of route by route."""
    responses = operation.get("responses", {})
    if "requestBody" in operation and "413" in responses:
        responses["415"] = {**responses["413"], "description": "Unsupported Media Type"}


def problem_schema_where_it_is_sent(response: dict[str, Any]) -> None:
    """FastAPI puts a response model's schema under the route's media type (application/json);
    a problem is sent as application/problem+json, so its schema goes there, alone."""
    content = response.get("content", {})
    if PROBLEM_CONTENT_TYPE in content and "application/json" in content:
        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
