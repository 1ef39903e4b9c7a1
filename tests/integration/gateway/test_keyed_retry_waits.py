"""`Prefer: wait=N` on a keyed retry of a message applied before: the client whose first answer
was lost (its connection or the replica dropped mid-wait, or it was `pending`) retries with the
same `Idempotency-Key` and gets the turn's end, as docs/gateway.md promises for a wait — not
the bare `accepted` of a message whose turn it then has to poll for."""

import asyncio

import httpx
import pytest

from contracts.agents import AgentType
from contracts.topics import TopicCatalogue, TopicName
from contracts.turns import CompleteTurn, FailTurn
from tests.integration.gateway.in_process import InProcessGateway
from tests.integration.gateway.with_session_commands import gateway_over_session_commands
from tests.integration.service_harness import Publisher

pytestmark = pytest.mark.integration

TENANT = "acme"


async def _applied_message(
    gateway: InProcessGateway, session: str, key: str
) -> tuple[dict[str, str], str]:
    """A session whose keyed message was applied while its answer said only `pending`."""
    created = await gateway.http.post(
        "/v1/sessions", json={"session_id": session}, headers=gateway.auth
    )
    assert created.status_code == 201, created.text
    keyed = {**gateway.auth, "Idempotency-Key": key}
    first = await gateway.http.post(
        f"/v1/sessions/{session}/messages",
        json={"content": "hello"},
        headers={**keyed, "Prefer": "respond-async"},
    )
    assert (first.status_code, first.json()["status"]) == (202, "pending"), first.text
    turn_id: str = first.json()["turn_id"]
    for _ in range(200):
        found = await gateway.http.get(f"/v1/sessions/{session}", headers=gateway.auth)
        if found.json()["turn_in_flight"] == turn_id:
            return keyed, turn_id
        await asyncio.sleep(0.05)
    raise AssertionError("the message's turn never started")


def _complete(session: str, turn_id: str) -> CompleteTurn:
    return CompleteTurn(
        id=f"{session}-complete",
        session_id=session,
        tenant_id=TENANT,
        turn_id=turn_id,
        step=0,
        invocation_id=f"{session}-inv",
        agent=AgentType.ORCHESTRATOR,
        content="the answer",
    )


async def _retry(gateway: InProcessGateway, session: str, keyed: dict[str, str]) -> httpx.Response:
    return await gateway.http.post(
        f"/v1/sessions/{session}/messages",
        json={"content": "hello"},
        headers={**keyed, "Prefer": "wait=10"},
        timeout=30,
    )


async def test_a_keyed_retry_with_wait_gets_the_end_of_the_turn(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    name = f"retry-wait-{unique_suffix}"
    catalogue = TopicCatalogue(prefix=f"{name}.")
    async with (
        gateway_over_session_commands(
            kafka_bootstrap_servers, mongodb_uri, mongo_database_name, name
        ) as gateway,
        Publisher(kafka_bootstrap_servers) as publisher,
    ):
        # The turn still runs when the retry comes: the retry waits for its end.
        keyed, turn_id = await _applied_message(gateway, "s-running", "k-running")
        retry = asyncio.create_task(_retry(gateway, "s-running", keyed))
        await asyncio.sleep(0.5)  # the retry is waiting (a late start would only be quicker)
        assert not retry.done(), retry.result().text
        await publisher.send(catalogue.name(TopicName.TURNS), _complete("s-running", turn_id))
        waited = await retry
        assert waited.status_code == 200, waited.text
        assert waited.json()["status"] == "completed"
        assert waited.json()["answer"]["content"] == "the answer"

        # The turn ended before the retry: its end is read from the history at once.
        keyed, turn_id = await _applied_message(gateway, "s-ended", "k-ended")
        await publisher.send(catalogue.name(TopicName.TURNS), _complete("s-ended", turn_id))
        for _ in range(200):
            found = await gateway.http.get("/v1/sessions/s-ended", headers=gateway.auth)
            if found.json()["turn_in_flight"] is None:
                break
            await asyncio.sleep(0.05)
        ended = await _retry(gateway, "s-ended", keyed)
        assert (ended.status_code, ended.json()["status"]) == (200, "completed"), ended.text
        assert ended.json()["answer"]["content"] == "the answer"

        # Stopped by a cancel after some text: `cancelled`, with the interrupted text.
        keyed, turn_id = await _applied_message(gateway, "s-cancelled", "k-cancelled")
        retry = asyncio.create_task(_retry(gateway, "s-cancelled", keyed))
        cancelled = await gateway.http.post(
            "/v1/sessions/s-cancelled/turns/cancel", json={}, headers=gateway.auth
        )
        assert cancelled.status_code == 200, cancelled.text
        await publisher.send(
            catalogue.name(TopicName.TURNS),
            FailTurn(
                id="s-cancelled-fail",
                session_id="s-cancelled",
                tenant_id=TENANT,
                turn_id=turn_id,
                step=0,
                invocation_id="s-cancelled-inv",
                agent=AgentType.ORCHESTRATOR,
                error_class="cancelled",
                partial_content="the begin",
            ),
        )
        stopped = await retry
        assert (stopped.status_code, stopped.json()["status"]) == (200, "cancelled"), stopped.text
        assert (stopped.json()["answer"]["content"], stopped.json()["answer"]["interrupted"]) == (
            "the begin",
            True,
        )
