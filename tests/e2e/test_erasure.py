"""Erasure (issue 18): erase a session through the gateway, and its content is gone from every
collection; the audit shows the erasure; a replay of its earlier commands brings nothing back.

Against the four services, the gateway, the real broker and the Mongo-compatible server.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pymongo import AsyncMongoClient

from contracts.commands import Command, CreateSession, SubmitUserMessage
from services.audit.audit_log import AuditQuery, MongoAuditLog
from tests.e2e.conftest import Pipeline
from tests.e2e.conversations import publish
from tests.e2e.gateway_process import GatewayProcess, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SECRET = "my passport number is X1234567"
TITLE = "Ada's immigration case"
PROMPT = "You are Ada's lawyer."
T = TypeVar("T")


@pytest.fixture
async def gateway(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[GatewayProcess]:
    process = await start_gateway(
        tmp_path / "gateway", pipeline.stack.env, (pipeline.settings.tenant_id, "tenant-other")
    )
    try:
        yield process
    finally:
        process.stack.stop_all(timeout_s=10.0)


async def until(
    what: str, probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 60
) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s; last seen {value!r}")
        await asyncio.sleep(0.3)


async def test_an_erased_session_keeps_no_content_anywhere(
    pipeline: Pipeline, gateway: GatewayProcess
) -> None:
    settings = pipeline.settings
    tenant = settings.tenant_id
    session = f"erase-{tenant}"[:60]
    earlier: list[Command] = [
        CreateSession(
            id=f"cmd-create-{session}",
            session_id=session,
            tenant_id=tenant,
            title=TITLE,
            system_prompt=PROMPT,
        ),
        SubmitUserMessage(
            id=f"cmd-msg-{session}",
            session_id=session,
            tenant_id=tenant,
            message_id=f"m-{session}",
            content=SECRET,
        ),
    ]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    database = client[settings.mongodb_database]
    audit = MongoAuditLog(database)
    try:
        await publish(settings.kafka_bootstrap_servers, pipeline.catalogue, earlier)
        # The turn answered (both messages stored) and its LLM result kept.
        await until(
            "the turn answered",
            lambda: database["messages"].count_documents({"session_id": session}),
            lambda n: n == 2,
        )
        await until(
            "the LLM result kept",
            lambda: database["llm_results"].count_documents({"session_id": session}),
            lambda n: n >= 1,
        )

        async with httpx.AsyncClient(base_url=gateway.url, timeout=60.0) as http:
            stranger = await http.post(
                f"/v1/sessions/{session}/erase", headers=gateway.auth("tenant-other")
            )
            assert stranger.status_code == 404, stranger.text  # like a missing session

            erased = await http.post(
                f"/v1/sessions/{session}/erase",
                json={"reason": "erasure request"},
                headers=gateway.auth(tenant),
            )
            assert erased.status_code == 200, erased.text
            view = erased.json()
            assert (view["status"], view["title"], view["system_prompt"]) == ("erased", "", "")

            again = await http.post(f"/v1/sessions/{session}/erase", headers=gateway.auth(tenant))
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "erased"

            refused = await http.post(
                f"/v1/sessions/{session}/messages",
                json={"content": SECRET},
                headers=gateway.auth(tenant),
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "session_erased"

        # A replay of the earlier commands, byte for byte, then a new message behind them on
        # the same key (so in order): once that one is refused, the replay was decided too.
        # The replayed message is a no-op (its id is remembered), or, once out of the
        # idempotency window, refused `session_erased`; either way no content comes back.
        marker = SubmitUserMessage(
            id=f"cmd-after-replay-{session}",
            session_id=session,
            tenant_id=tenant,
            message_id=f"m-after-{session}",
            content=SECRET,
        )
        await publish(settings.kafka_bootstrap_servers, pipeline.catalogue, [*earlier, marker])
        rejected = await until(
            "the message after the replay refused",
            lambda: audit.query(
                AuditQuery(session_id=session, fact_type="session.command_rejected.v1", limit=100)
            ),
            lambda page: any(
                r.detail.get("rejected_command_id") == marker.id
                and r.detail.get("reason") == "session_erased"
                for r in page.records
            ),
        )
        reasons = {r.detail["rejected_command_id"]: r.detail["reason"] for r in rejected.records}
        # Remembered ids are skipped silently; decided again they are refused.
        assert {reasons.get(c.id) for c in earlier} <= {None, "session_exists", "session_erased"}

        await until(
            "the kept LLM results deleted",
            lambda: database["llm_results"].count_documents({"session_id": session}),
            lambda n: n == 0,
        )
        messages = await database["messages"].find({"session_id": session}).to_list(None)
        assert [(m["seq"], m["content"], m["erased"]) for m in messages] == [
            (1, "", True),
            (2, "", True),
        ]
        stored = await database["sessions"].find_one({"_id": session})
        assert stored is not None
        assert stored["status"] == "erased"
        everything = json.dumps(
            [stored, messages, await database["llm_results"].find().to_list(None)], default=str
        )
        for content in (SECRET, TITLE, PROMPT):
            assert content not in everything

        facts = await until(
            "the erasure audited",
            lambda: audit.query(AuditQuery(session_id=session, limit=1000)),
            lambda page: (
                {"session.erase.v1", "session.erased.v1"} <= {r.fact_type for r in page.records}
            ),
        )
        erasure = next(r for r in facts.records if r.fact_type == "session.erased.v1")
        assert erasure.detail["reason"] == "erasure request"
        assert str(erasure.detail["requested_by"]).startswith("api-key:")
        # The audit keeps the facts, its content hashed (the default redaction): no text.
        audited = json.dumps([r.model_dump(mode="json") for r in facts.records])
        for content in (SECRET, TITLE, PROMPT):
            assert content not in audited
    finally:
        await client.close()
