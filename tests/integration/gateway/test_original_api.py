"""The original service's request bodies keep working (docs/gateway.md: `POST /v1/sessions`
takes the original's `CreateSessionRequest(session_id, system_prompt)`, whose
`system_prompt` was `Optional[str] = None`)."""

import pytest

from tests.integration.gateway.with_session_commands import gateway_over_session_commands

pytestmark = pytest.mark.integration


async def test_a_null_system_prompt_creates_a_session_without_one(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"orig-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post(
            "/v1/sessions",
            json={"session_id": "s-original", "system_prompt": None},
            headers=gateway.auth,
        )
        assert created.status_code == 201, created.text
        assert created.json()["system_prompt"] == ""
