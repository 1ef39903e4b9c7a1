"""Commands session-commands applies without publishing an event (docs/gateway.md: a switch to
the current agent is a no-op 200, erasing again is a 200 with the same skeleton) answer as soon
as they are applied, not after the whole decision timeout: there is no event to wait for."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.gateway.in_process import InProcessGateway
from tests.integration.gateway.with_session_commands import gateway_over_session_commands

pytestmark = pytest.mark.integration

DECISION_TIMEOUT_S = 30.0
"""Long, so that an answer that waits it out cannot pass for a prompt one."""
PROMPT_S = 5.0


@pytest.fixture
async def gateway(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[InProcessGateway]:
    async with gateway_over_session_commands(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        f"silent-{unique_suffix}",
        gateway_decision_timeout_s=DECISION_TIMEOUT_S,
    ) as gateway:
        yield gateway


async def _timed_post(
    gateway: InProcessGateway, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    answer = await gateway.http.post(path, json=body, headers=gateway.auth)
    return answer.status_code, answer.json(), time.monotonic() - started


async def test_a_no_op_switch_and_a_repeated_erase_answer_at_once(
    gateway: InProcessGateway,
) -> None:
    created = await gateway.http.post(
        "/v1/sessions", json={"session_id": "s-silent"}, headers=gateway.auth
    )
    assert created.status_code == 201, created.text

    status, body, took = await _timed_post(
        gateway, "/v1/sessions/s-silent/agent", {"agent": "orchestrator"}
    )
    assert (status, body["current_agent"], body["switch_count"]) == (200, "orchestrator", 0)
    assert took < PROMPT_S, f"the no-op switch took {took:.1f}s"

    status, body, _ = await _timed_post(gateway, "/v1/sessions/s-silent/erase", {})
    assert (status, body["status"]) == (200, "erased")
    status, again, took = await _timed_post(gateway, "/v1/sessions/s-silent/erase", {})
    assert (status, again["status"]) == (200, "erased")
    assert again["version"] > body["version"]
    assert took < PROMPT_S, f"erasing again took {took:.1f}s"


async def test_a_refusal_is_still_a_refusal(gateway: InProcessGateway) -> None:
    """Looking for silent commands must not take a remembered refusal for one."""
    created = await gateway.http.post(
        "/v1/sessions", json={"session_id": "s-closed"}, headers=gateway.auth
    )
    assert created.status_code == 201, created.text
    closed = await gateway.http.post("/v1/sessions/s-closed/close", headers=gateway.auth)
    assert closed.status_code == 200, closed.text

    status, body, took = await _timed_post(
        gateway, "/v1/sessions/s-closed/agent", {"agent": "orchestrator"}
    )
    assert (status, body["code"]) == (409, "session_closed")
    assert took < PROMPT_S


async def test_a_keyed_retry_of_a_pending_message_answers_at_once_from_the_history(
    gateway: InProcessGateway,
) -> None:
    """docs/gateway.md, Idempotency: a retry of a `pending` answer whose command was applied
    meanwhile is answered from the read model, not after the whole decision timeout (the
    command, published again, is dropped as a redelivery: no event comes)."""
    created = await gateway.http.post(
        "/v1/sessions", json={"session_id": "s-keyed"}, headers=gateway.auth
    )
    assert created.status_code == 201, created.text
    keyed = {**gateway.auth, "Idempotency-Key": "retry-me"}
    body = {"content": "hello"}
    first = await gateway.http.post(
        "/v1/sessions/s-keyed/messages", json=body, headers={**keyed, "Prefer": "respond-async"}
    )
    assert (first.status_code, first.json()["status"]) == (202, "pending")
    deadline = time.monotonic() + PROMPT_S
    while (await gateway.http.get("/v1/sessions/s-keyed", headers=gateway.auth)).json()[
        "message_count"
    ] < 1:
        assert time.monotonic() < deadline, "the message was never applied"
        await asyncio.sleep(0.05)

    started = time.monotonic()
    again = await gateway.http.post("/v1/sessions/s-keyed/messages", json=body, headers=keyed)
    took = time.monotonic() - started
    assert again.status_code == 202, again.text
    receipt = again.json()
    assert (receipt["status"], receipt["seq"]) == ("accepted", 1)
    assert receipt["message_id"] == first.json()["message_id"]
    assert took < PROMPT_S, f"the retry took {took:.1f}s"


async def test_a_keyed_retry_of_a_pending_message_that_was_refused_gets_the_refusal(
    gateway: InProcessGateway,
) -> None:
    """`Prefer: respond-async` answers `pending` before the decision; a retry with the key must
    learn the decision, a refusal included, not `pending` for ever."""
    created = await gateway.http.post(
        "/v1/sessions", json={"session_id": "s-shut"}, headers=gateway.auth
    )
    assert created.status_code == 201, created.text
    closed = await gateway.http.post("/v1/sessions/s-shut/close", headers=gateway.auth)
    assert closed.status_code == 200, closed.text
    keyed = {**gateway.auth, "Idempotency-Key": "too-late"}
    body = {"content": "hello?"}
    first = await gateway.http.post(
        "/v1/sessions/s-shut/messages", json=body, headers={**keyed, "Prefer": "respond-async"}
    )
    assert (first.status_code, first.json()["status"]) == (202, "pending")
    deadline = time.monotonic() + PROMPT_S
    while (await gateway.http.get("/v1/sessions/s-shut", headers=gateway.auth)).json()[
        "version"
    ] == closed.json()["version"]:
        assert time.monotonic() < deadline, "the message was never decided"
        await asyncio.sleep(0.05)

    started = time.monotonic()
    again = await gateway.http.post("/v1/sessions/s-shut/messages", json=body, headers=keyed)
    assert time.monotonic() - started < PROMPT_S
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "session_closed"
    assert again.json()["command_id"] == first.json()["command_id"]
