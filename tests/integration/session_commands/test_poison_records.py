"""Hostile input on the real broker (issue 16): each poison record gets its dead letter or its
refusal, and the session's next command is applied within seconds — the partition never stops,
and the group's commits move past the poison record."""

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiokafka.producer.message_accumulator as accumulator
import aiokafka.producer.producer as producer
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from contracts.agents import AgentType
from contracts.codec import EncodedRecord, encode
from contracts.commands import CreateSession, SubmitUserMessage, SwitchAgent
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.limits import MAX_DEAD_LETTER_HEADER_BYTES
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    RejectionReason,
    SessionCreated,
    TurnStarted,
    UserMessageAccepted,
)
from contracts.topics import TopicCatalogue, TopicName
from tests.integration.service_harness import Publisher, TopicReader, wait_caught_up
from tests.integration.session_commands.harness import provisioned_topics, running, settings_for

pytestmark = pytest.mark.integration

TENANT = "tenant-p"
PARTITIONS = 4
NEXT_COMMAND_WITHIN_S = 15.0
ONE_MEGABYTE = 1_000_000


@dataclass
class Rig:
    bootstrap: str
    catalogue: TopicCatalogue
    group: str
    publisher: Publisher
    events: TopicReader
    dead_letters: TopicReader

    @property
    def commands(self) -> str:
        return self.catalogue.name(TopicName.COMMANDS)

    async def created(self, session: str) -> None:
        await self.publisher.send(
            self.commands,
            CreateSession(id=f"{session}-create", session_id=session, tenant_id=TENANT),
        )
        await self.events.wait_for(
            lambda _: any(isinstance(m, SessionCreated) for m in self.events.of_session(session)),
            f"{session} created",
        )

    async def next_message_is_accepted(self, session: str) -> None:
        """The session's next command, applied within seconds of the poison record."""
        await self.publisher.send(
            self.commands,
            SubmitUserMessage(
                id=f"{session}-next",
                session_id=session,
                tenant_id=TENANT,
                message_id=f"{session}-m-next",
                content="still there?",
            ),
        )
        await self.events.wait_for(
            lambda _: any(
                isinstance(m, UserMessageAccepted) for m in self.events.of_session(session)
            ),
            f"{session}: the command after the poison record applied",
            within=NEXT_COMMAND_WITHIN_S,
        )

    async def dead_letter_at(self, offset: int, partition: int) -> DeadLetter:
        def found() -> DeadLetter | None:
            return next(
                (
                    m
                    for m in self.dead_letters.of_type(DeadLetter)
                    if (m.origin_topic, m.origin_partition, m.origin_offset)
                    == (self.commands, partition, offset)
                ),
                None,
            )

        await self.dead_letters.wait_for(
            lambda _: found() is not None,
            f"the dead letter of {self.commands}[{partition}]@{offset}",
            within=NEXT_COMMAND_WITHIN_S,
        )
        letter = found()
        assert letter is not None
        return letter

    async def commits_pass_everything(self) -> None:
        await wait_caught_up(self.bootstrap, self.group, [self.commands], PARTITIONS, within=30.0)


@pytest.fixture
async def rig(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[Rig]:
    prefix = f"poison-{unique_suffix}."
    group = f"poison-{unique_suffix}"
    settings = settings_for(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, prefix, group
    )
    async with (
        provisioned_topics(kafka_bootstrap_servers, prefix, PARTITIONS) as catalogue,
        running(settings),
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)) as events,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.DEAD_LETTERS)) as dead,
    ):
        yield Rig(kafka_bootstrap_servers, catalogue, group, publisher, events, dead)


async def test_a_one_megabyte_header_is_dead_lettered_cut_down_and_the_session_flows_on(
    rig: Rig,
) -> None:
    s = "poison-big-header"
    await rig.created(s)
    padding = b"A" * ONE_MEGABYTE
    meta = await rig.publisher.send_raw(
        rig.commands, s.encode(), b"{not json", [("x-padding", padding)]
    )

    await rig.next_message_is_accepted(s)
    letter = await rig.dead_letter_at(meta.offset, meta.partition)

    assert letter.reason is DeadLetterReason.MISSING_HEADER  # no CloudEvents headers at all
    assert letter.original_truncated
    [header] = letter.original_headers
    assert (header.name, header.truncated_from_bytes) == ("x-padding", ONE_MEGABYTE)
    assert base64.b64decode(header.value_b64) == padding[:MAX_DEAD_LETTER_HEADER_BYTES]
    assert base64.b64decode(letter.original_value_b64 or "") == b"{not json"
    await rig.commits_pass_everything()


async def test_a_header_value_that_is_not_utf8_is_dead_lettered_with_its_bytes(rig: Rig) -> None:
    s = "poison-latin1"
    await rig.created(s)
    command = SubmitUserMessage(
        id=f"{s}-bad", session_id=s, tenant_id=TENANT, message_id=f"{s}-m-bad", content="hi"
    )
    record = encode(command, source="crm-backend")
    headers = [(n, b"crm-b\xe4ckend" if n == "ce_source" else v) for n, v in record.headers]
    meta = await rig.publisher.send_raw(rig.commands, record.key, record.value, headers)

    await rig.next_message_is_accepted(s)
    letter = await rig.dead_letter_at(meta.offset, meta.partition)

    assert letter.reason is DeadLetterReason.INVALID_FIELD
    assert "ce_source" in letter.error_message
    original = {h.name: base64.b64decode(h.value_b64) for h in letter.original_headers}
    assert original["ce_source"] == b"crm-b\xe4ckend"
    assert base64.b64decode(letter.original_value_b64 or "") == record.value
    assert not letter.original_truncated
    accepted = [m for m in rig.events.of_session(s) if isinstance(m, UserMessageAccepted)]
    assert [m.message_id for m in accepted] == [f"{s}-m-next"]  # the poison one never applied
    await rig.commits_pass_everything()


class _NameBytes(str):
    """A header name whose wire bytes are not UTF-8: aiokafka's Python batch builder writes
    `name.encode("utf-8")`, and any producer of `commands` (librdkafka, Java) can send them."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"x-\xff\xfe"


async def test_a_header_name_that_is_not_utf8_is_dead_lettered_and_the_consumer_flows_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiokafka decodes header names as strict UTF-8 while unpacking a fetch: every getmany()
    # of the group raised on this record, for ever, and no partition moved (health ready).
    s = "poison-header-name"
    await rig.created(s)
    command = SubmitUserMessage(
        id=f"{s}-bad", session_id=s, tenant_id=TENANT, message_id=f"{s}-m-bad", content="hi"
    )
    record = encode(command, source="crm-backend")
    for module in (accumulator, producer):  # their C builder takes exact str names only
        monkeypatch.setattr(module, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
    meta = await rig.publisher.send_raw(
        rig.commands, record.key, record.value, [*record.headers, (_NameBytes("x"), b"v")]
    )
    monkeypatch.undo()

    await rig.next_message_is_accepted(s)
    letter = await rig.dead_letter_at(meta.offset, meta.partition)

    assert letter.reason is DeadLetterReason.INVALID_FIELD
    assert "header name" in letter.error_message
    assert letter.original_headers[-1].name == "x-\ufffd\ufffd"
    assert letter.original_truncated  # the name's bytes are not kept: no byte-exact replay
    assert base64.b64decode(letter.original_value_b64 or "") == record.value
    accepted = [m for m in rig.events.of_session(s) if isinstance(m, UserMessageAccepted)]
    assert [m.message_id for m in accepted] == [f"{s}-m-next"]  # the poison one never applied
    await rig.commits_pass_everything()


async def _in_a_transaction(
    rig: Rig, record: EncodedRecord, transactional_id: str, *, commit: bool
) -> None:
    """As an upstream writing `commands` in Kafka transactions: one record, then commit or abort."""
    producer = AIOKafkaProducer(bootstrap_servers=rig.bootstrap, transactional_id=transactional_id)
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send(rig.commands, record.value, key=record.key, headers=record.headers)
        if commit:
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
    finally:
        await producer.stop()


async def test_a_command_of_an_aborted_transaction_is_never_applied(
    rig: Rig, unique_suffix: str
) -> None:
    # An upstream that writes commands in Kafka transactions aborts one (its own database
    # write failed, say): read_uncommitted consumers applied the command anyway.
    s = "poison-aborted"
    await rig.created(s)
    aborted = encode(
        SubmitUserMessage(
            id=f"{s}-aborted", session_id=s, tenant_id=TENANT, message_id=f"{s}-m-x", content="x"
        ),
        source="crm-backend",
    )
    await _in_a_transaction(rig, aborted, f"upstream-{unique_suffix}", commit=False)

    await rig.next_message_is_accepted(s)

    accepted = [m for m in rig.events.of_session(s) if isinstance(m, UserMessageAccepted)]
    assert [m.message_id for m in accepted] == [f"{s}-m-next"]
    assert rig.dead_letters.of_type(DeadLetter) == []


async def test_the_commit_passes_the_marker_of_a_transaction_that_ends_the_partition(
    rig: Rig, unique_suffix: str
) -> None:
    # A transaction ends with a marker the consumer never receives as a record: the commit
    # stopped one offset short of the log end for good (lag 1, the no-progress alert).
    s = "poison-committed-txn"
    await rig.created(s)
    command = encode(
        SubmitUserMessage(
            id=f"{s}-txn", session_id=s, tenant_id=TENANT, message_id=f"{s}-m", content="x"
        ),
        source="crm-backend",
    )
    await _in_a_transaction(rig, command, f"upstream-{unique_suffix}", commit=True)

    await rig.events.wait_for(
        lambda _: any(isinstance(m, UserMessageAccepted) for m in rig.events.of_session(s)),
        f"{s}: the transaction's command applied",
        within=NEXT_COMMAND_WITHIN_S,
    )
    await rig.commits_pass_everything()


async def test_an_unknown_agent_is_refused_on_session_events_and_the_session_flows_on(
    rig: Rig,
) -> None:
    s = "poison-agent"
    await rig.created(s)
    # What an integrator's bytes look like: the contract's JSON with a name we do not know.
    switch = encode(
        SwitchAgent(id=f"{s}-sw", session_id=s, tenant_id=TENANT, target_agent=AgentType.CODER),
        source="crm-backend",
    )
    value = switch.value.replace(b'"target_agent":"coder"', b'"target_agent":"wizard"')
    assert value != switch.value
    await rig.publisher.send_raw(rig.commands, switch.key, value, switch.headers)

    await rig.next_message_is_accepted(s)

    [rejected] = [m for m in rig.events.of_session(s) if isinstance(m, CommandRejected)]
    assert (rejected.rejected_command_id, rejected.reason) == (
        f"{s}-sw",
        RejectionReason.INVALID_AGENT,
    )
    assert "wizard" in rejected.detail
    await rig.commits_pass_everything()
    assert rig.dead_letters.of_type(DeadLetter) == []


async def test_a_huge_correlation_header_does_not_stall_the_session(rig: Rig) -> None:
    # Carried on to the events, a 780 kB ce_correlationid made a TurnStarted (a context of
    # escaped characters) that the broker refused: it stayed in the session's outbox, and every
    # later command of the session was dead-lettered on it.
    s = "poison-correlation"
    await rig.publisher.send(
        rig.commands,
        CreateSession(
            id=f"{s}-create", session_id=s, tenant_id=TENANT, system_prompt="\x01" * 16_000
        ),
    )
    command = SubmitUserMessage(
        id=f"{s}-big", session_id=s, tenant_id=TENANT, message_id=f"{s}-m", content="\x01" * 32_000
    )
    record = encode(command, source="crm-backend", correlation_id="c" * 780_000)
    await rig.publisher.send_raw(rig.commands, record.key, record.value, record.headers)
    await rig.events.wait_for(
        lambda _: any(isinstance(m, TurnStarted) for m in rig.events.of_session(s)),
        f"{s}: the turn started",
        within=NEXT_COMMAND_WITHIN_S,
    )

    await rig.publisher.send(
        rig.commands, SwitchAgent(id=f"{s}-sw", session_id=s, tenant_id=TENANT, target_agent="ask")
    )
    await rig.events.wait_for(
        lambda _: any(isinstance(m, AgentSwitched) for m in rig.events.of_session(s)),
        f"{s}: the command after it applied",
        within=NEXT_COMMAND_WITHIN_S,
    )
    assert rig.dead_letters.of_type(DeadLetter) == []


async def test_commands_in_batches_compressed_with_every_kafka_codec_are_applied(
    rig: Rig,
) -> None:
    # An upstream producer chooses its codec. Without the codec's library a consumer fails
    # every fetch of that partition (UnsupportedCodecError), for good: the services' aiokafka
    # has all four (the cramjam extra, pyproject.toml).
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        s = f"codec-{codec}"
        record = encode(
            CreateSession(id=f"{s}-create", session_id=s, tenant_id=TENANT), source="crm"
        )
        upstream = AIOKafkaProducer(
            bootstrap_servers=rig.bootstrap, acks="all", compression_type=codec
        )
        await upstream.start()
        try:
            await upstream.send_and_wait(
                rig.commands, record.value, key=record.key, headers=record.headers
            )
        finally:
            await upstream.stop()
        await _created_by_now(rig, s, codec)
    await rig.commits_pass_everything()


async def _created_by_now(rig: Rig, session: str, codec: str) -> None:
    await rig.events.wait_for(
        lambda _: any(isinstance(m, SessionCreated) for m in rig.events.of_session(session)),
        f"{session} created from a {codec} batch",
        within=NEXT_COMMAND_WITHIN_S,
    )
