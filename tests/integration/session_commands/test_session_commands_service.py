"""session-commands in this process against the real broker and the Mongo-compatible server."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.agents import AgentType, MessageRole
from contracts.commands import (
    CloseSession,
    CreateSession,
    ReopenSession,
    RetryTurn,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    RejectionReason,
    SessionExpired,
    TurnStarted,
)
from contracts.topics import TopicCatalogue, TopicName
from contracts.turns import CompleteTurn, FailTurn, SwitchAgentForTurn
from services.session_commands.app import SessionCommandsService
from services.session_commands.domain.policy import MAX_AGENT_SWITCHES
from services.session_commands.domain.state import SessionStatus
from services.session_commands.expiry import SessionExpiry
from services.session_commands.mongo.session_document import Document
from tests.integration.service_harness import Publisher, TopicReader
from tests.integration.session_commands.harness import (
    provisioned_topics,
    running,
    settings_for,
    type_names,
)

pytestmark = pytest.mark.integration

TENANT = "tenant-a"


@dataclass
class Rig:
    service: SessionCommandsService
    catalogue: TopicCatalogue
    publisher: Publisher
    events: TopicReader
    dead_letters: TopicReader
    database: Any

    @property
    def commands(self) -> str:
        return self.catalogue.name(TopicName.COMMANDS)

    @property
    def turns(self) -> str:
        return self.catalogue.name(TopicName.TURNS)

    async def events_of(self, session_id: str, count: int, what: str) -> list[Any]:
        await self.events.wait_for(lambda _: len(self.events.of_session(session_id)) >= count, what)
        return self.events.of_session(session_id)


@pytest.fixture
async def rig(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> AsyncIterator[Rig]:
    prefix = f"sc-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, prefix, f"sc-{unique_suffix}"
    )
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    async with (
        provisioned_topics(kafka_bootstrap_servers, prefix) as catalogue,
        running(settings) as service,
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)) as events,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.DEAD_LETTERS)) as dead,
    ):
        yield Rig(service, catalogue, publisher, events, dead, mongo[mongo_database_name])
    await mongo.close()


def create(session: str, tenant: str = TENANT, **fields: Any) -> CreateSession:
    return CreateSession(id=f"{session}-create", session_id=session, tenant_id=tenant, **fields)


def submit(session: str, n: int, tenant: str = TENANT) -> SubmitUserMessage:
    return SubmitUserMessage(
        id=f"{session}-submit-{n}",
        session_id=session,
        tenant_id=tenant,
        message_id=f"{session}-m{n}",
        content=f"message {n}",
    )


def turn_fields(started: TurnStarted | AgentSwitched, step: int) -> dict[str, Any]:
    assert started.turn_id is not None
    return {
        "session_id": started.session_id,
        "tenant_id": started.tenant_id,
        "turn_id": started.turn_id,
        "step": step,
        "invocation_id": f"inv-{started.turn_id}-{step}",
    }


async def test_full_session_lifecycle(rig: Rig) -> None:
    s = "life-1"
    await rig.publisher.send(rig.commands, create(s, title="first"), submit(s, 1))
    started = (await rig.events_of(s, 3, "created, accepted, turn started"))[-1]
    assert isinstance(started, TurnStarted)
    assert [m.content for m in started.context.messages] == ["message 1"]

    hand_off = SwitchAgentForTurn(
        id="life-1-t1",
        from_agent=AgentType.ORCHESTRATOR,
        target_agent=AgentType.CODER,
        reason="code",
        **turn_fields(started, 0),
    )
    await rig.publisher.send(rig.turns, hand_off)
    switched = (await rig.events_of(s, 4, "agent switched"))[-1]
    assert isinstance(switched, AgentSwitched)
    assert (switched.to_agent, switched.step, switched.switch_count) == (AgentType.CODER, 1, 1)

    done = CompleteTurn(
        id="life-1-t2", agent=AgentType.CODER, content="done", **turn_fields(switched, 1)
    )
    await rig.publisher.send(rig.turns, done)
    await rig.events_of(s, 6, "assistant message + turn completed")

    await rig.publisher.send(
        rig.commands,
        UpdateSession(id="life-1-u", session_id=s, tenant_id=TENANT, title="renamed"),
        SwitchAgent(id="life-1-sw", session_id=s, tenant_id=TENANT, target_agent=AgentType.ASK),
        CloseSession(id="life-1-close", session_id=s, tenant_id=TENANT, reason="bye"),
        submit(s, 2),
        ReopenSession(id="life-1-reopen", session_id=s, tenant_id=TENANT),
    )
    events = await rig.events_of(s, 11, "update, switch, close, refusal, reopen")
    assert type_names(events) == [
        "SessionCreated", "UserMessageAccepted", "TurnStarted", "AgentSwitched",
        "AssistantMessageAppended", "TurnCompleted", "SessionUpdated", "AgentSwitched",
        "SessionClosed", "CommandRejected", "SessionReopened",
    ]  # fmt: skip
    rejected = events[9]
    assert isinstance(rejected, CommandRejected)
    assert rejected.reason is RejectionReason.SESSION_CLOSED

    queries = rig.service.queries
    state = await queries.get_session(s, tenant_id=TENANT)
    assert state is not None
    assert (state.title, state.status, state.current_agent) == (
        "renamed", SessionStatus.ACTIVE, AgentType.ASK,
    )  # fmt: skip
    assert [h.to_agent for h in state.switch_history] == [AgentType.CODER, AgentType.ASK]
    history = await queries.history(s, tenant_id=TENANT)
    assert [(m.seq, m.role, m.content) for m in history.messages] == [
        (1, MessageRole.USER, "message 1"),
        (2, MessageRole.ASSISTANT, "done"),
    ]
    assert history.messages[1].agent is AgentType.CODER
    page = await queries.list_sessions(tenant_id=TENANT, active=True)
    assert [x.session_id for x in page.sessions] == [s]
    document = await rig.database["sessions"].find_one({"_id": s})
    assert document is not None
    assert document["outbox"] == []  # published and cleared


async def test_another_tenant_is_answered_as_if_the_session_did_not_exist(rig: Rig) -> None:
    s, nobody = "tenant-1", "tenant-1-never-created"
    await rig.publisher.send(rig.commands, create(s), submit(s, 1, tenant="intruder"))
    await rig.publisher.send(rig.commands, submit(nobody, 1, tenant="intruder"))

    events = await rig.events_of(s, 2, "created, then refused")
    (missing,) = await rig.events_of(nobody, 1, "refused: no such session")

    rejected = events[1]
    assert isinstance(rejected, CommandRejected)
    assert isinstance(missing, CommandRejected)
    assert (rejected.reason, rejected.tenant_id) == (RejectionReason.UNKNOWN_SESSION, "intruder")
    assert (rejected.reason, rejected.detail) == (missing.reason, missing.detail)
    assert await rig.database["messages"].count_documents({"session_id": s}) == 0
    assert await rig.service.queries.get_session(s, tenant_id="intruder") is None


async def test_the_switch_cap_holds_for_users_and_hand_offs(rig: Rig) -> None:
    s = "cap-1"
    cycle = [AgentType.CODER, AgentType.ARCHITECT]
    switches = [
        SwitchAgent(id=f"{s}-sw{i}", session_id=s, tenant_id=TENANT, target_agent=cycle[i % 2])
        for i in range(MAX_AGENT_SWITCHES + 1)
    ]
    await rig.publisher.send(rig.commands, create(s), *switches, submit(s, 1))
    events = await rig.events_of(s, MAX_AGENT_SWITCHES + 4, "10 switches, refusal, turn")
    refused = events[MAX_AGENT_SWITCHES + 1]
    assert isinstance(refused, CommandRejected)
    assert refused.reason is RejectionReason.SWITCH_LIMIT_REACHED
    started = events[-1]
    assert isinstance(started, TurnStarted)
    assert started.context.switch_count == MAX_AGENT_SWITCHES

    hand_off = SwitchAgentForTurn(
        id=f"{s}-handoff", from_agent=started.agent, target_agent=AgentType.DEBUG,
        **turn_fields(started, 0),
    )  # fmt: skip
    await rig.publisher.send(rig.turns, hand_off)
    events = await rig.events_of(s, MAX_AGENT_SWITCHES + 6, "refused hand-off ends the turn")
    assert type_names(events[-2:]) == ["CommandRejected", "TurnFailed"]
    state = await rig.service.queries.get_session(s, tenant_id=TENANT)
    assert state is not None
    assert (state.switch_count, state.turn) == (MAX_AGENT_SWITCHES, None)


async def test_a_message_during_a_turn_waits_for_it(rig: Rig) -> None:
    s = "queue-1"
    await rig.publisher.send(rig.commands, create(s), submit(s, 1), submit(s, 2))
    events = await rig.events_of(s, 4, "turn 1 started, message 2 queued")
    first = events[2]
    assert isinstance(first, TurnStarted)
    assert type_names(events[3:]) == ["UserMessageAccepted"]

    complete = CompleteTurn(
        id=f"{s}-done-1", agent=first.agent, content="answer 1", **turn_fields(first, 0)
    )
    await rig.publisher.send(rig.turns, complete)
    events = await rig.events_of(s, 7, "answer 1, turn 2 started")

    assert type_names(events[4:]) == ["AssistantMessageAppended", "TurnCompleted", "TurnStarted"]
    second = events[-1]
    assert isinstance(second, TurnStarted)
    assert second.user_message_id == f"{s}-m2"
    assert [m.content for m in second.context.messages] == ["message 1", "answer 1", "message 2"]
    history = await rig.service.queries.history(s, tenant_id=TENANT, newest_first=True, limit=2)
    assert [m.seq for m in history.messages] == [3, 2]
    assert history.next_after_seq == 2
    rest = await rig.service.queries.history(s, tenant_id=TENANT, newest_first=True, after_seq=2)
    assert ([m.seq for m in rest.messages], rest.next_after_seq) == ([1], None)


async def test_a_failed_turn_retried_runs_once_more_and_its_answer_is_kept(rig: Rig) -> None:
    s = "retry-1"
    await rig.publisher.send(rig.commands, create(s), submit(s, 1))
    failed = (await rig.events_of(s, 3, "turn started"))[-1]
    assert isinstance(failed, TurnStarted)
    await rig.publisher.send(
        rig.turns,
        FailTurn(
            id=f"{s}-fail", agent=failed.agent, error_class="circuit_open", **turn_fields(failed, 0)
        ),
    )
    await rig.events_of(s, 4, "turn failed")

    command = RetryTurn(id=f"{s}-retry", session_id=s, tenant_id=TENANT, turn_id=failed.turn_id)
    # The same command twice (a client re-sending it), then a second click: one new turn.
    again = RetryTurn(id=f"{s}-retry-2", session_id=s, tenant_id=TENANT, turn_id=failed.turn_id)
    await rig.publisher.send(rig.commands, command, command, again)
    events = await rig.events_of(s, 6, "the retried turn, the refusal of the second click")
    assert type_names(events[3:]) == ["TurnFailed", "TurnStarted", "CommandRejected"]
    retried = events[4]
    assert isinstance(retried, TurnStarted)
    assert retried.turn_id != failed.turn_id
    assert retried.user_message_id == failed.user_message_id
    refused = events[5]
    assert isinstance(refused, CommandRejected)
    assert (refused.rejected_command_id, refused.reason) == (
        again.id,
        RejectionReason.TURN_IN_FLIGHT,
    )

    await rig.publisher.send(
        rig.turns,
        CompleteTurn(
            id=f"{s}-done", agent=retried.agent, content="answer", **turn_fields(retried, 0)
        ),
    )
    await rig.events_of(s, 8, "answer + turn completed")
    history = await rig.service.queries.history(s, tenant_id=TENANT)
    assert [(m.seq, m.role, m.content) for m in history.messages] == [
        (1, MessageRole.USER, "message 1"),
        (2, MessageRole.ASSISTANT, "answer"),
    ]


async def test_a_malformed_record_is_dead_lettered_and_the_session_flows_on(rig: Rig) -> None:
    s = "poison-1"
    await rig.publisher.send_raw(rig.commands, s.encode(), b"{not json")
    await rig.publisher.send(rig.commands, create(s))

    await rig.events_of(s, 1, "the command after the poison record")
    letters = await rig.dead_letters.wait_for(lambda m: len(m) >= 1, "a dead letter")

    letter = letters[0]
    assert isinstance(letter, DeadLetter)
    assert letter.origin_topic == rig.commands
    assert letter.reason in {DeadLetterReason.MISSING_HEADER, DeadLetterReason.MALFORMED_JSON}


async def test_the_expiry_job_expires_inactive_sessions_and_retention_purges_them(
    rig: Rig,
) -> None:
    old, fresh = "exp-old", "exp-fresh"
    await rig.publisher.send(rig.commands, create(old), submit(old, 1))
    await rig.events_of(old, 3, "old session with a turn in flight")
    await rig.publisher.send(rig.commands, create(fresh))
    await rig.events_of(fresh, 1, "fresh session")
    sessions = rig.database["sessions"]
    fresh_doc = await sessions.find_one({"_id": fresh})
    assert fresh_doc is not None
    ttl = timedelta(hours=24)
    # The job runs "24 h after the fresh session's last activity": the old one is older.
    now = fresh_doc["last_activity_at"] + ttl
    job = SessionExpiry(
        rig.database, rig.service.runtime.publish, turns_topic=rig.turns, ttl=ttl,
        retention=timedelta(days=7), clock=lambda: now,
    )  # fmt: skip

    assert await job.publish_expirations() == 1
    events = await rig.events_of(old, 5, "turn failed, session expired")
    assert type_names(events[-2:]) == ["TurnFailed", "SessionExpired"]
    expired = events[-1]
    assert isinstance(expired, SessionExpired)
    assert await job.publish_expirations() == 0  # expired sessions are not selected again
    assert await job.purge_expired() == 0  # retention not yet reached

    old_doc = await sessions.find_one({"_id": old})
    assert old_doc is not None
    now = old_doc["expired_at"] + timedelta(days=7, seconds=1)
    assert await job.purge_expired() == 1
    assert await sessions.find_one({"_id": old}) is None
    assert await rig.database["messages"].count_documents({"session_id": old}) == 0
    assert await sessions.find_one({"_id": fresh}) is not None
