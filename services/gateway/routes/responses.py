"""The problem responses every /v1 route may give, for the OpenAPI document."""

from typing import Any

from services.gateway.problems import PROBLEM_CONTENT_TYPE, Problem


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    common = (400, 401, 413, 422, 429, 503)
    return {
        status: {"model": Problem, "content": {PROBLEM_CONTENT_TYPE: {}}}
        for status in sorted({*common, *statuses})
    }
