"""Wrong JSON types are 422 `validation_failed` (docs/gateway.md, Errors), booleans included:
a string or a number where the contract says boolean is not coerced into one."""

import pytest

from tests.integration.gateway.with_session_commands import gateway_over_session_commands

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("is_error", ["yes", "true", 1, 0])
async def test_a_tool_result_whose_is_error_is_not_a_boolean_is_refused(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    is_error: object,
) -> None:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"types-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post("/v1/sessions", json={}, headers=gateway.auth)
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]

        answer = await gateway.http.post(
            f"/v1/sessions/{session_id}/tool-calls/call-1/result",
            json={"content": "done", "is_error": is_error},
            headers=gateway.auth,
        )

        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "validation_failed"
        assert [error["location"] for error in problem["errors"]] == ["body.is_error"]


async def test_a_path_tool_call_or_turn_id_that_cannot_exist_is_not_found(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    """docs/gateway.md, Errors: 404 `not_found`, for a session of the caller and another's
    alike (checked before the session)."""
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"ids-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post("/v1/sessions", json={}, headers=gateway.auth)
        assert created.status_code == 201, created.text
        session = f"/v1/sessions/{created.json()['session_id']}"
        for path, body, detail in (
            (f"{session}/tool-calls/bad%20id/result", {"content": "x"}, "no such tool call"),
            (f"{session}/tool-calls/{'c' * 129}/approve", {}, "no such tool call"),
            (f"{session}/tool-calls/-call/deny", {}, "no such tool call"),
            (f"{session}/turns/bad%20id/retry", None, "no such turn"),
            ("/v1/sessions/missing/turns/bad%20id/retry", None, "no such turn"),
        ):
            answer = await gateway.http.post(path, json=body, headers=gateway.auth)
            assert answer.status_code == 404, (path, answer.text)
            assert (answer.json()["code"], answer.json()["detail"]) == ("not_found", detail)
