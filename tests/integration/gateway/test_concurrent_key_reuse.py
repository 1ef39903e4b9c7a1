"""One `Idempotency-Key` sent twice at once with two different bodies: docs/gateway.md says
the same key with a different request is 422 `idempotency_key_reused`. Both requests used to
find nothing kept, publish the same command id (the pipeline applied one body) and both get a
2xx, the one whose body was dropped answered with the other's outcome."""

import asyncio

import pytest

from tests.integration.gateway.with_session_commands import gateway_over_session_commands

pytestmark = pytest.mark.integration


async def test_concurrent_requests_with_one_key_and_different_bodies_apply_one_and_refuse_one(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"reuse-{unique_suffix}"
    ) as gateway:
        for trial in range(3):
            session = f"s-reuse-{trial}"
            created = await gateway.http.post(
                "/v1/sessions", json={"session_id": session}, headers=gateway.auth
            )
            assert created.status_code == 201, created.text
            headers = {**gateway.auth, "Idempotency-Key": f"key-{trial}"}

            answers = await asyncio.gather(
                *(
                    gateway.http.post(
                        f"/v1/sessions/{session}/messages",
                        json={"content": f"body {n}"},
                        headers=headers,
                    )
                    for n in (0, 1)
                )
            )

            statuses = sorted(answer.status_code for answer in answers)
            assert statuses == [202, 422], [answer.text for answer in answers]
            applied = next(n for n, answer in enumerate(answers) if answer.status_code == 202)
            refused = answers[1 - applied].json()
            assert refused["code"] == "idempotency_key_reused"
            history = await gateway.http.get(
                f"/v1/sessions/{session}/messages", headers=gateway.auth
            )
            contents = [message["content"] for message in history.json()["messages"]]
            assert contents == [f"body {applied}"]


async def test_concurrent_duplicates_with_one_key_are_all_answered_as_the_one_command(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"dups-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post(
            "/v1/sessions", json={"session_id": "s-dups"}, headers=gateway.auth
        )
        assert created.status_code == 201, created.text
        headers = {**gateway.auth, "Idempotency-Key": "one-key"}

        answers = await asyncio.gather(
            *(
                gateway.http.post(
                    "/v1/sessions/s-dups/messages", json={"content": "once"}, headers=headers
                )
                for _ in range(4)
            )
        )

        assert [answer.status_code for answer in answers] == [202] * 4, answers[0].text
        assert len({answer.json()["message_id"] for answer in answers}) == 1
        replay = await gateway.http.post(
            "/v1/sessions/s-dups/messages", json={"content": "once"}, headers=headers
        )
        assert replay.json()["message_id"] == answers[0].json()["message_id"]
        history = await gateway.http.get("/v1/sessions/s-dups/messages", headers=gateway.auth)
        assert [message["content"] for message in history.json()["messages"]] == ["once"]


async def test_a_key_answered_pending_refuses_another_body(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    """A `pending` 202 keeps no answer; the key's claim still names the request, so a retry
    with another body is the 422 (it was answered with the first body's outcome)."""
    async with gateway_over_session_commands(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, f"pend-{unique_suffix}"
    ) as gateway:
        created = await gateway.http.post(
            "/v1/sessions", json={"session_id": "s-pend"}, headers=gateway.auth
        )
        assert created.status_code == 201, created.text
        headers = {**gateway.auth, "Idempotency-Key": "pending-key"}

        first = await gateway.http.post(
            "/v1/sessions/s-pend/messages",
            json={"content": "first"},
            headers={**headers, "Prefer": "respond-async"},
        )
        assert (first.status_code, first.json()["status"]) == (202, "pending"), first.text
        other = await gateway.http.post(
            "/v1/sessions/s-pend/messages", json={"content": "other"}, headers=headers
        )
        same = await gateway.http.post(
            "/v1/sessions/s-pend/messages", json={"content": "first"}, headers=headers
        )

        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert same.status_code == 202, same.text
        assert same.json()["message_id"] == first.json()["message_id"]
        history = await gateway.http.get("/v1/sessions/s-pend/messages", headers=gateway.auth)
        assert [message["content"] for message in history.json()["messages"]] == ["first"]
