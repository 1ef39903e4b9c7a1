"""A session's `commands` and `turns` records reach session-commands from two partitions, and
Kafka keeps no order between them. After a backlog (the service down, then restarted) the stop
button pressed mid-answer must still win over the answer's CompleteTurn published after it."""

import asyncio

import pytest

from contracts.commands import CancelTurn, CreateSession, SubmitUserMessage
from contracts.session_events import (
    AssistantMessageAppended,
    TurnCancelled,
    TurnCompleted,
    TurnStarted,
    TurnStopped,
)
from contracts.topics import TopicName
from contracts.turns import CompleteTurn
from tests.integration.service_harness import Publisher, TopicReader
from tests.integration.session_commands.harness import (
    provisioned_topics,
    running,
    settings_for,
    type_names,
)

pytestmark = pytest.mark.integration

TENANT = "tenant-a"
SESSIONS = 4


async def test_a_cancel_published_before_the_answer_wins_after_a_backlog(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    prefix = f"sc-order-{unique_suffix}."
    settings = settings_for(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        prefix,
        f"sc-order-{unique_suffix}",
    )
    sessions = [f"order-{unique_suffix}-{n}" for n in range(SESSIONS)]
    async with (
        provisioned_topics(kafka_bootstrap_servers, prefix) as catalogue,
        Publisher(kafka_bootstrap_servers) as publisher,
        TopicReader(kafka_bootstrap_servers, catalogue.name(TopicName.SESSION_EVENTS)) as events,
    ):
        commands = catalogue.name(TopicName.COMMANDS)
        async with running(settings):
            for s in sessions:
                await publisher.send(
                    commands,
                    CreateSession(id=f"{s}-create", session_id=s, tenant_id=TENANT),
                    SubmitUserMessage(
                        id=f"{s}-submit",
                        session_id=s,
                        tenant_id=TENANT,
                        message_id=f"{s}-m1",
                        content="tell me everything",
                    ),
                )
            await events.wait_for(
                lambda _: all(
                    any(isinstance(m, TurnStarted) for m in events.of_session(s)) for s in sessions
                ),
                "every turn started",
            )
        # The service is down (its offsets committed at the stop): the user presses stop, and
        # the answer, which kept streaming, completes afterwards.
        started = {
            s: next(m for m in events.of_session(s) if isinstance(m, TurnStarted)) for s in sessions
        }
        for s in sessions:
            await publisher.send(
                commands, CancelTurn(id=f"{s}-cancel", session_id=s, tenant_id=TENANT)
            )
        # Record times are milliseconds: 2 ms later the answers' times are strictly later.
        await asyncio.sleep(0.002)
        for s, turn in started.items():
            assert turn.turn_id is not None
            await publisher.send(
                catalogue.name(TopicName.TURNS),
                CompleteTurn(
                    id=f"{s}-complete",
                    session_id=s,
                    tenant_id=TENANT,
                    turn_id=turn.turn_id,
                    step=0,
                    invocation_id=f"inv-{s}",
                    agent=turn.agent,
                    content="the whole answer",
                ),
            )
        async with running(settings):
            await events.wait_for(
                lambda _: all(
                    any(isinstance(m, TurnStopped | TurnCompleted) for m in events.of_session(s))
                    for s in sessions
                ),
                "every turn ended",
            )
    for s in sessions:
        ended = events.of_session(s)[3:]
        # The answer finished before the cancel was applied: it is kept whole, interrupted.
        assert type_names(ended) == ["TurnCancelled", "AssistantMessageAppended", "TurnStopped"]
        cancelled, kept = ended[0], ended[1]
        assert isinstance(cancelled, TurnCancelled)
        assert isinstance(kept, AssistantMessageAppended)
        assert (kept.content, kept.interrupted) == ("the whole answer", True)
