"""session-commands binds external commands to their publisher: a source acts only for the
tenants AGENT_RUNTIME_COMMAND_SOURCES allows it, and a source with a key must sign."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.base import Message
from contracts.codec import encode
from contracts.commands import CreateSession, SubmitUserMessage
from contracts.session_events import CommandRejected, RejectionReason, SessionCreated
from contracts.signature import SIGNATURE_HEADER, signature
from contracts.topics import TopicCatalogue, TopicName
from services.session_commands.mongo.session_document import Document
from tests.integration.gateway.in_process import in_process_gateway
from tests.integration.service_harness import Publisher, TopicReader
from tests.integration.session_commands.harness import provisioned_topics, running, settings_for

pytestmark = pytest.mark.integration

GATEWAY_KEY = b"gateway-test-key"
SOURCES = {
    "crm": {"tenants": ["acme"]},
    "gateway": {"tenants": ["*"], "hmac_key": GATEWAY_KEY.decode()},
}


@dataclass
class Rig:
    catalogue: TopicCatalogue
    publisher: Publisher
    events: TopicReader
    database: Any

    async def send(self, message: Message, source: str, *, key: bytes | None = None) -> None:
        record = encode(message, source=source)
        headers = list(record.headers)
        if key is not None:
            headers.append((SIGNATURE_HEADER, signature(record.value, key)))
        await self.publisher.send_raw(
            self.catalogue.name(TopicName.COMMANDS), record.key, record.value, headers
        )

    async def outcome(self, session_id: str, count: int = 1) -> Message:
        await self.events.wait_for(
            lambda _: len(self.events.of_session(session_id)) >= count, f"{session_id} answered"
        )
        return self.events.of_session(session_id)[count - 1]


@pytest.fixture
async def rig(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[Rig]:
    prefix = f"bind-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        prefix,
        f"bind-{unique_suffix}",
        command_sources=SOURCES,
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    async with (
        provisioned_topics(kafka_bootstrap_servers, prefix) as catalogue,
        running(settings),
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)) as events,
    ):
        yield Rig(catalogue, publisher, events, mongo[mongo_database_name])
    await mongo.close()


def create(session: str, tenant: str) -> CreateSession:
    return CreateSession(id=f"{session}-create", session_id=session, tenant_id=tenant)


def submit(session: str, tenant: str) -> SubmitUserMessage:
    return SubmitUserMessage(
        id=f"{session}-submit-{tenant}",
        session_id=session,
        tenant_id=tenant,
        message_id=f"{session}-m-{tenant}",
        content="hello",
    )


async def test_a_source_cannot_act_for_a_tenant_it_is_not_allowed(rig: Rig) -> None:
    await rig.send(create("s-acme", "acme"), "crm")
    assert isinstance(await rig.outcome("s-acme"), SessionCreated)

    await rig.send(submit("s-acme", "globex"), "crm")
    await rig.send(create("s-globex", "globex"), "crm")

    for session, count in (("s-acme", 2), ("s-globex", 1)):
        refused = await rig.outcome(session, count)
        assert isinstance(refused, CommandRejected)
        assert (refused.reason, refused.tenant_id) == (RejectionReason.TENANT_NOT_ALLOWED, "globex")
    assert await rig.database["sessions"].find_one({"_id": "s-globex"}) is None


async def test_an_unlisted_source_acts_for_nobody(rig: Rig) -> None:
    await rig.send(create("s-stranger", "acme"), "stranger")

    refused = await rig.outcome("s-stranger")

    assert isinstance(refused, CommandRejected)
    assert refused.reason is RejectionReason.TENANT_NOT_ALLOWED
    assert await rig.database["sessions"].find_one({"_id": "s-stranger"}) is None


async def test_a_source_with_a_key_must_sign_and_may_then_act_for_any_tenant(rig: Rig) -> None:
    await rig.send(create("s-forged", "initech"), "gateway")
    await rig.send(create("s-signed", "initech"), "gateway", key=GATEWAY_KEY)

    forged = await rig.outcome("s-forged")
    signed = await rig.outcome("s-signed")

    assert isinstance(forged, CommandRejected)
    assert forged.reason is RejectionReason.SIGNATURE_INVALID
    assert isinstance(signed, SessionCreated)
    assert signed.tenant_id == "initech"


async def test_the_gateway_publishes_as_its_configured_source_and_signs_with_its_key(
    rig: Rig, kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str
) -> None:
    deployment: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "mongodb_uri": mongodb_uri,
        "mongodb_database": mongo_database_name,
        "topic_prefix": rig.catalogue.prefix,
    }
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"gateway_hmac_key": GATEWAY_KEY.decode()}, 201, None),
        ({}, 403, "signature_invalid"),  # a keyed source that does not sign
        ({"gateway_hmac_key": "not-the-key"}, 403, "signature_invalid"),
        (
            {"gateway_source": "edge-2", "gateway_hmac_key": GATEWAY_KEY.decode()},
            403,
            "tenant_not_allowed",
        ),  # a source that is not listed
    ]
    for index, (settings, status, code) in enumerate(cases):
        async with in_process_gateway(**deployment, **settings) as gateway:
            await gateway.until_ready()
            answer = await gateway.http.post(
                "/v1/sessions", json={"session_id": f"gw-src-{index}"}, headers=gateway.auth
            )
        assert answer.status_code == status, (settings, answer.text)
        if code is not None:
            assert answer.json()["code"] == code


async def test_a_forged_copy_of_a_command_never_shares_an_event_id_with_its_acceptance(
    rig: Rig,
) -> None:
    """A forged copy refused before the signed original: both answers reach `session-events`
    under ids of their own, so the audit log (one record per event id) keeps the acceptance
    instead of dropping it as a duplicate of the refusal."""
    original = create("s-copied", "initech")
    forged = encode(original, source="gateway")
    await rig.publisher.send_raw(
        rig.catalogue.name(TopicName.COMMANDS),
        forged.key,
        forged.value,
        [*forged.headers, (SIGNATURE_HEADER, signature(forged.value, b"not-the-key"))],
    )
    await rig.send(original, "gateway", key=GATEWAY_KEY)

    refused = await rig.outcome("s-copied", 1)
    created = await rig.outcome("s-copied", 2)

    assert isinstance(refused, CommandRejected)
    assert refused.reason is RejectionReason.SIGNATURE_INVALID
    assert isinstance(created, SessionCreated)
    assert refused.id != created.id


async def test_a_keyed_retry_after_the_deployment_is_fixed_is_applied_not_refused_again(
    rig: Rig, kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str
) -> None:
    """The publisher binding refuses the gateway itself and remembers nothing, so the same
    Idempotency-Key sent again once the gateway has the right key creates the session; the
    refusal was kept and replayed as 403 for the retention (24 h) instead."""
    deployment: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "mongodb_uri": mongodb_uri,
        "mongodb_database": mongo_database_name,
        "topic_prefix": rig.catalogue.prefix,
    }
    body = {"session_id": "gw-fixed-deployment"}
    answers = []
    for key in ("not-the-key", GATEWAY_KEY.decode()):  # wrong, then the deployment fixed
        async with in_process_gateway(**deployment, gateway_hmac_key=key) as gateway:
            await gateway.until_ready()
            headers = {**gateway.auth, "Idempotency-Key": "create-once"}
            answers.append(await gateway.http.post("/v1/sessions", json=body, headers=headers))
            if key == GATEWAY_KEY.decode():
                again = await gateway.http.post("/v1/sessions", json=body, headers=headers)
    assert (answers[0].status_code, answers[0].json()["code"]) == (403, "signature_invalid")
    assert answers[1].status_code == 201, answers[1].text
    assert (again.status_code, again.json()) == (201, answers[1].json())  # now kept
