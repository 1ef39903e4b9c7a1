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
