"""A session that closes, expires or is erased while its cancelled turn is still stopping (its
step has not reported: no pipeline runs here) ends that turn once: TurnCancelled, then
TurnStopped — never a TurnFailed after the TurnCancelled — and the step's late report changes
nothing."""

import pytest

from contracts.commands import (
    CancelTurn,
    CloseSession,
    CreateSession,
    EraseSession,
    SubmitUserMessage,
)
from contracts.session_events import SessionEvent, TurnStarted, TurnStopped
from contracts.topics import TopicName
from contracts.turns import FailTurn
from tests.integration.service_harness import Publisher, TopicReader
from tests.integration.session_commands.harness import (
    provisioned_topics,
    running,
    settings_for,
    type_names,
)

pytestmark = pytest.mark.integration

TENANT = "tenant-a"


async def test_a_close_or_erasure_while_the_cancelled_turn_stops_stops_it_once(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    prefix = f"sc-stopping-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        prefix,
        f"sc-stopping-{unique_suffix}",
    )
    closed, erased = f"closed-{unique_suffix}", f"erased-{unique_suffix}"
    async with (
        provisioned_topics(kafka_bootstrap_servers, prefix) as catalogue,
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)) as events,
        running(settings),
    ):
        commands = catalogue.name(TopicName.COMMANDS)
        for s in (closed, erased):
            ending = (
                CloseSession(id=f"{s}-end", session_id=s, tenant_id=TENANT)
                if s == closed
                else EraseSession(id=f"{s}-end", session_id=s, tenant_id=TENANT)
            )
            # One partition, in this order: the turn is cancelled, a message waits behind it,
            # and the session ends before the cancelled step reports.
            await publisher.send(
                commands,
                CreateSession(id=f"{s}-create", session_id=s, tenant_id=TENANT),
                SubmitUserMessage(
                    id=f"{s}-m1", session_id=s, tenant_id=TENANT, message_id=f"{s}-m1", content="a"
                ),
                CancelTurn(id=f"{s}-cancel", session_id=s, tenant_id=TENANT),
                SubmitUserMessage(
                    id=f"{s}-m2", session_id=s, tenant_id=TENANT, message_id=f"{s}-m2", content="b"
                ),
                ending,
            )
        ends = {closed: "SessionClosed", erased: "SessionErased"}
        await events.wait_for(
            lambda _: all(ends[s] in type_names(events.of_session(s)) for s in (closed, erased)),
            "both sessions ended",
        )
        for s in (closed, erased):
            started = next(m for m in events.of_session(s) if isinstance(m, TurnStarted))
            assert started.turn_id is not None
            # The cancelled step's late report (orchestration's FailTurn of LLMFailed cancelled).
            await publisher.send(
                catalogue.name(TopicName.TURNS),
                FailTurn(
                    id=f"{s}-late",
                    session_id=s,
                    tenant_id=TENANT,
                    turn_id=started.turn_id,
                    step=0,
                    invocation_id=f"inv-{s}",
                    agent=started.agent,
                    error_class="cancelled",
                    partial_content="streamed",
                ),
            )
        await events.settle()
    for s in (closed, erased):
        seen: list[SessionEvent] = [m for m in events.of_session(s) if isinstance(m, SessionEvent)]
        assert type_names(seen) == [
            "SessionCreated",
            "UserMessageAccepted",
            "TurnStarted",
            "TurnCancelled",
            "UserMessageAccepted",
            "TurnStopped",
            ends[s],
        ]
        stopped = seen[5]
        assert isinstance(stopped, TurnStopped)
        assert stopped.partial_message_id is None
