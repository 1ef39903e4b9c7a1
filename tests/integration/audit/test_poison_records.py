"""Poison headers at the audit service on the real broker (issue 16): a ~1 MB header and a
header value that is not UTF-8 each get audit's own dead letter, and the session's next fact is
audited within seconds — the partition never stops, and the group's commits move past it."""

import base64
from collections.abc import Sequence

import pytest

from contracts.codec import decode, encode
from contracts.commands import CreateSession, SubmitUserMessage
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.topics import TopicName
from tests.integration.audit.harness import (
    Deployment,
    caught_up,
    deployment,
    read_topic,
    running,
    stored_documents,
)
from tests.integration.service_harness import Publisher, eventually

pytestmark = pytest.mark.integration

NEXT_FACT_WITHIN_S = 15.0
ONE_MEGABYTE = 1_000_000


async def dead_letters_of(env: Deployment, group: str) -> list[DeadLetter]:
    letters = []
    for _, _, value, headers in await read_topic(env.bootstrap, env.topic(TopicName.DEAD_LETTERS)):
        message = decode(value, headers).message
        if isinstance(message, DeadLetter) and message.consumer_group == group:
            letters.append(message)
    return letters


async def audited(env: Deployment, fact_id: str) -> bool:
    return any(d["record"]["fact_id"] == fact_id for d in await stored_documents(env))


async def poison_then_next(
    env: Deployment, group: str, poison: tuple[bytes, bytes, Sequence[tuple[str, bytes]]]
) -> tuple[int, DeadLetter]:
    """Publish the poison record and the session's next command while audit runs; returns the
    poison record's offset and audit's dead letter of it."""
    session = "poison-audit"
    next_command = CreateSession(id="poison-audit-next", session_id=session, tenant_id="t-p")
    async with running(env.settings(group)), Publisher(env.bootstrap) as publisher:
        key, value, headers = poison
        meta = await publisher.send_raw(env.topic(TopicName.COMMANDS), key, value, headers)
        await publisher.send(env.topic(TopicName.COMMANDS), next_command)
        await eventually(
            lambda: audited(env, next_command.id),
            within=NEXT_FACT_WITHIN_S,
            what="the command after the poison record audited",
        )
        await caught_up(env, group, within=30.0)
    [letter] = await dead_letters_of(env, group)
    # docs/audit.md: the audit topic's headers are these two, no FastStream correlation_id.
    audit_records = await read_topic(env.bootstrap, env.topic(TopicName.AUDIT))
    assert audit_records
    for *_, headers in audit_records:
        assert sorted(name for name, _ in headers) == ["content-type", "traceparent"]
    assert (letter.origin_partition, letter.origin_offset) == (meta.partition, meta.offset)
    return meta.offset, letter


async def test_a_one_megabyte_header_is_dead_lettered_and_the_trail_flows_on(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        padding = b"A" * ONE_MEGABYTE
        _, letter = await poison_then_next(
            env, f"audit-{unique_suffix}", (b"poison-audit", b"{not json", [("x-pad", padding)])
        )
        assert letter.original_truncated
        [header] = letter.original_headers
        assert header.truncated_from_bytes == ONE_MEGABYTE


async def test_a_header_value_that_is_not_utf8_is_dead_lettered_with_its_bytes(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        command = SubmitUserMessage(
            id="poison-audit-bad",
            session_id="poison-audit",
            tenant_id="t-p",
            message_id="m-bad",
            content="hi",
        )
        record = encode(command, source="crm-backend")
        headers = [(n, b"\xff\xfe" if n == "ce_id" else v) for n, v in record.headers]
        _, letter = await poison_then_next(
            env, f"audit-{unique_suffix}", (record.key, record.value, headers)
        )
        assert letter.reason is DeadLetterReason.INVALID_FIELD
        original = {h.name: base64.b64decode(h.value_b64) for h in letter.original_headers}
        assert original["ce_id"] == b"\xff\xfe"
        assert not await audited(env, command.id)
