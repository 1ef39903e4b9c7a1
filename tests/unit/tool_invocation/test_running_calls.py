"""Which session facts stop a running tool call (given a running call, when a fact arrives,
then it is cancelled or left alone)."""

import asyncio

import pytest

from contracts.agents import AgentType
from contracts.base import Message
from contracts.mid_turn import CancellationReason
from contracts.session_events import (
    SessionClosed,
    SessionReopened,
    TurnCancelled,
    TurnCompleted,
    TurnStopped,
)
from services.tool_invocation.running_calls import RunningCalls

pytestmark = pytest.mark.unit

SESSION, TURN = "session-1", "turn-1"


def cancelled(turn: str = TURN, *, queued: bool = False) -> TurnCancelled:
    return TurnCancelled(
        id="c",
        session_id=SESSION,
        tenant_id="t",
        turn_id=turn,
        user_message_id="m",
        reason=CancellationReason.CANCELLED,
        queued=queued,
    )


FACTS: list[tuple[str, Message, bool]] = [
    ("turn cancelled", cancelled(), True),
    ("a queued turn cancelled", cancelled(queued=True), False),
    ("another turn cancelled", cancelled("turn-2"), False),
    (
        "turn stopped",
        TurnStopped(
            id="s",
            session_id=SESSION,
            tenant_id="t",
            turn_id=TURN,
            agent=AgentType.CODER,
            steps=1,
            reason=CancellationReason.CANCELLED,
        ),
        True,
    ),
    (
        "turn completed",
        TurnCompleted(
            id="d", session_id=SESSION, tenant_id="t", turn_id=TURN, agent=AgentType.CODER, steps=1
        ),
        True,
    ),
    (
        "session closed",
        SessionClosed(id="x", session_id=SESSION, tenant_id="t", reason="bye"),
        True,
    ),
    ("another session fact", SessionReopened(id="r", session_id=SESSION, tenant_id="t"), False),
]


@pytest.mark.parametrize(("name", "fact", "stops"), FACTS, ids=[f[0] for f in FACTS])
async def test_a_fact_stops_the_calls_it_ends(name: str, fact: Message, stops: bool) -> None:
    running = RunningCalls()
    task = asyncio.create_task(asyncio.sleep(60))
    call = running.register(SESSION, TURN, "call-1", task)
    assert running.has_session(SESSION)
    running.on_fact(fact)
    await asyncio.sleep(0)
    assert task.cancelled() is stops
    assert (call.stopped is not None) is stops
    task.cancel()
    running.finish(call)
    assert not running.has_session(SESSION)
    assert len(running) == 0
