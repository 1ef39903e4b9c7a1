"""A refusal that says "send when the turn ends" (409 `turn_in_flight`, 429 `queue_full`) is
not the key's answer for its whole retention: docs/gateway.md tells the client to retry, and
docs say to retry a keyed request with the same `Idempotency-Key`."""

import asyncio
import time

import pytest

from contracts.agents import AgentType
from contracts.topics import TopicCatalogue, TopicName
from contracts.turns import FailTurn
from tests.integration.gateway.in_process import InProcessGateway
from tests.integration.gateway.with_session_commands import gateway_over_session_commands
from tests.integration.service_harness import Publisher

pytestmark = pytest.mark.integration

SESSION = "s-busy"


async def _turn_in_flight(gateway: InProcessGateway) -> str | None:
    answer = await gateway.http.get(f"/v1/sessions/{SESSION}", headers=gateway.auth)
    turn: str | None = answer.json()["turn_in_flight"]
    return turn


async def test_a_keyed_message_refused_while_a_turn_runs_is_sent_by_its_retry_after_the_turn(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    name = f"later-{unique_suffix}"
    async with (
        gateway_over_session_commands(
            kafka_bootstrap_servers, mongodb_uri, mongo_database_name, name
        ) as gateway,
        Publisher(kafka_bootstrap_servers) as publisher,
    ):
        created = await gateway.http.post(
            "/v1/sessions",
            json={"session_id": SESSION, "mid_turn_policy": "reject"},
            headers=gateway.auth,
        )
        assert created.status_code == 201, created.text
        first = await gateway.http.post(
            f"/v1/sessions/{SESSION}/messages", json={"content": "one"}, headers=gateway.auth
        )
        assert first.status_code == 202, first.text
        turn_id = first.json()["turn_id"]

        keyed = {**gateway.auth, "Idempotency-Key": "second-message"}
        path, body = f"/v1/sessions/{SESSION}/messages", {"content": "two"}
        refused = await gateway.http.post(path, json=body, headers=keyed)
        assert (refused.status_code, refused.json()["code"]) == (409, "turn_in_flight")

        # The turn ends (as agent-orchestration would end a failed one).
        catalogue = TopicCatalogue(prefix=f"{name}.")
        await publisher.send(
            catalogue.name(TopicName.TURNS),
            FailTurn(
                id="fail-1",
                session_id=SESSION,
                tenant_id="acme",
                turn_id=turn_id,
                step=0,
                invocation_id="inv-1",
                agent=AgentType.ORCHESTRATOR,
                error_class="test",
            ),
        )
        deadline = time.monotonic() + 10
        while await _turn_in_flight(gateway) is not None:
            assert time.monotonic() < deadline, "the turn never ended"
            await asyncio.sleep(0.05)

        sent = await gateway.http.post(path, json=body, headers=keyed)
        assert sent.status_code == 202, sent.text
        assert (sent.json()["status"], sent.json()["seq"]) == ("accepted", 2)
        # From now on the key answers with that acceptance, once.
        again = await gateway.http.post(path, json=body, headers=keyed)
        assert (again.status_code, again.json()) == (202, sent.json())
        history = await gateway.http.get(f"/v1/sessions/{SESSION}/messages", headers=gateway.auth)
        assert [m["content"] for m in history.json()["messages"]] == ["one", "two"]
