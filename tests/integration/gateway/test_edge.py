"""Authentication, rate limits and unavailable dependencies, against real servers."""

import pytest

from tests.integration.gateway.in_process import closed_port, in_process_gateway

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def test_missing_or_wrong_credentials_are_401_problems(mongodb_uri: str) -> None:
    async with in_process_gateway(mongodb_uri=mongodb_uri) as gw:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {gw.key}"}):
            response = await gw.http.get("/v1/sessions", headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["code"] == "unauthorized"


async def test_rate_limit_429_with_retry_after_and_ratelimit_headers(
    mongodb_uri: str, mongo_database_name: str
) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        gateway_rate_limit_per_minute=6,
        gateway_rate_limit_burst=3,
    ) as gw:
        answers = [await gw.http.get("/v1/sessions", headers=gw.auth) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        refused = answers[-1]
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["code"] == "rate_limited"
        # 6/min: one request per 10 s, less what refilled while the four requests ran.
        assert 7 <= int(refused.headers["retry-after"]) <= 10
        assert refused.headers["ratelimit-limit"] == "3"


async def test_database_down_is_503_with_retry_after(kafka_bootstrap_servers: str) -> None:
    async with in_process_gateway(
        mongodb_uri=f"mongodb://127.0.0.1:{closed_port()}/?directConnection=true",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
    ) as gw:
        for path in ("/v1/sessions", "/v1/sessions/s-1", "/v1/sessions/s-1/messages"):
            response = await gw.http.get(path, headers=gw.auth)
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "database_unavailable"
            assert response.headers["retry-after"] == "5"
        ready = await gw.http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["mongo"] is False


async def test_broker_down_is_503_with_retry_after(mongodb_uri: str) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri,
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port()}",
        gateway_produce_timeout_s=1.0,
    ) as gw:
        response = await gw.http.post(
            "/v1/sessions/s-1/messages", json={"content": "hello"}, headers=gw.auth
        )
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "broker_unavailable"
        assert response.headers["retry-after"] == "5"
        ready = await gw.http.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"broker": False, "mongo": True}


async def test_an_agent_outside_the_catalogue_is_invalid_agent(
    mongodb_uri: str, mongo_database_name: str
) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri, mongodb_database=mongo_database_name
    ) as gw:
        cases = [
            ("/v1/sessions/s-1/agent", {"agent": "wizard"}, "invalid_agent", "body.agent"),
            ("/v1/sessions", {"initial_agent": "wizard"}, "invalid_agent", "body.initial_agent"),
            ("/v1/sessions/s-1/agent", {"agent": 7}, "validation_failed", "body.agent"),
            ("/v1/sessions/s-1/agent", {}, "validation_failed", "body.agent"),
        ]
        for path, body, code, location in cases:
            response = await gw.http.post(path, json=body, headers=gw.auth)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == PROBLEM
            problem = response.json()
            assert problem["code"] == code, (body, problem)
            assert problem["type"].endswith(f"/{code}")
            assert [e["location"] for e in problem["errors"]] == [location]
            # Every problem has a detail (docs/gateway.md, Errors): here, which fields.
            assert problem["detail"] == f"invalid: {location}"
            assert "wizard" not in response.text  # the input is never echoed


async def test_a_body_that_is_not_sent_as_json_is_415_and_a_wrong_method_405_with_allow(
    mongodb_uri: str, mongo_database_name: str
) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri, mongodb_database=mongo_database_name
    ) as gw:
        body = b'{"content": "hi", "message_id": "m-1"}'
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = dict(gw.auth)
            if content_type is not None:
                headers["Content-Type"] = content_type
            response = await gw.http.post(
                "/v1/sessions/s-1/messages", content=body, headers=headers
            )
            assert response.status_code == 415, (content_type, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["code"] == "unsupported_media_type"
        # JSON of the wrong shape stays a schema mismatch.
        response = await gw.http.post(
            "/v1/sessions/s-1/messages",
            content=b"[1]",
            headers={**gw.auth, "Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_failed"

        response = await gw.http.delete("/v1/sessions", headers=gw.auth)
        assert response.status_code == 405
        assert response.json()["code"] == "method_not_allowed"
        assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_an_empty_idempotency_key_is_refused_not_shared(
    mongodb_uri: str, mongo_database_name: str
) -> None:
    """An empty key would make every such request of the tenant the same command: the second
    create would replay the first's session, a different body would be `idempotency_key_reused`."""
    async with in_process_gateway(
        mongodb_uri=mongodb_uri, mongodb_database=mongo_database_name
    ) as gw:
        response = await gw.http.post(
            "/v1/sessions", json={}, headers={**gw.auth, "Idempotency-Key": ""}
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert [e["location"] for e in problem["errors"]] == ["header.Idempotency-Key"]
