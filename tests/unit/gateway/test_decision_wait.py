"""The gateway's wait for a command's decision (Exchange._decision), without a broker.

A message is never applied silently (session-commands answers it with UserMessageAccepted or
CommandRejected), so its wait, the hot path, never reads the session document; a command that
can be applied silently (a switch to the current agent, say) looks there now and then, and a
read that fails is no answer: the command is published, the wait goes on."""

import asyncio

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from contracts.agents import AgentType
from contracts.codec import encode
from contracts.commands import Command, SubmitUserMessage, SwitchAgent
from contracts.session_events import (
    AgentSwitched,
    SessionEvent,
    SwitchInitiator,
    UserMessageAccepted,
)
from services.gateway.event_feed import SessionEventFeed
from services.gateway.exchange import Exchange, Origin

pytestmark = pytest.mark.unit

SESSION = "s-wait"
TENANT = "t"


class _Publisher:
    async def publish(self, command: Command, **_: object) -> None:
        return None


class _ReadModel:
    def __init__(self, *, fail: bool = False) -> None:
        self.silent_reads = 0
        self.fail = fail

    async def command_silent(self, tenant_id: str, session_id: str, command_id: str) -> bool:
        self.silent_reads += 1
        if self.fail:
            raise ServerSelectionTimeoutError("no primary (an election)")
        return False

    async def command_processed(self, tenant_id: str, session_id: str, command_id: str) -> bool:
        return False


async def _decision_after(
    delay_s: float, command: Command, event: SessionEvent, read_model: _ReadModel
) -> SessionEvent | None:
    feed = SessionEventFeed("127.0.0.1:1", "t.session-events")
    feed._ready.set()
    exchange = Exchange(
        feed,
        _Publisher(),  # type: ignore[arg-type]
        read_model,  # type: ignore[arg-type]
        decision_timeout_s=10.0,
        retry_after_s=1,
    )

    async def decide() -> None:
        await asyncio.sleep(delay_s)
        record = encode(event, source="test", causation_id=command.id)
        feed._dispatch(record.key, record.value, list(record.headers))

    decider = asyncio.create_task(decide())
    try:
        origin = Origin(tenant_id=TENANT, request_id="r-1", traceparent=None)
        async with exchange.submit(command, origin) as submitted:
            return submitted.decision
    finally:
        await decider


def _switch() -> tuple[SwitchAgent, AgentSwitched]:
    command = SwitchAgent(
        id="cmd-switch", session_id=SESSION, tenant_id=TENANT, target_agent="coder"
    )
    event = AgentSwitched(
        id="e-switched",
        session_id=SESSION,
        tenant_id=TENANT,
        from_agent=AgentType.ASK,
        to_agent=AgentType.CODER,
        reason="",
        switch_count=1,
        initiated_by=SwitchInitiator.USER,
    )
    return command, event


async def test_a_message_waits_for_its_decision_without_reading_the_store() -> None:
    command = SubmitUserMessage(
        id="cmd-message", session_id=SESSION, tenant_id=TENANT, message_id="m-1", content="hi"
    )
    accepted = UserMessageAccepted(
        id="e-accepted",
        session_id=SESSION,
        tenant_id=TENANT,
        message_id="m-1",
        seq=1,
        content="hi",
        queued=False,
    )
    read_model = _ReadModel()
    decision = await _decision_after(0.35, command, accepted, read_model)
    assert isinstance(decision, UserMessageAccepted)
    assert read_model.silent_reads == 0


async def test_a_command_that_may_be_silent_looks_at_the_store_while_it_waits() -> None:
    command, switched = _switch()
    read_model = _ReadModel()
    assert isinstance(await _decision_after(0.35, command, switched, read_model), AgentSwitched)
    assert read_model.silent_reads >= 1


async def test_a_store_that_fails_during_the_wait_does_not_fail_a_published_command() -> None:
    # The read raised out of the wait: 503 database_unavailable for a command already
    # published (and applied), which a client without an Idempotency-Key sends again.
    command, switched = _switch()
    read_model = _ReadModel(fail=True)
    assert isinstance(await _decision_after(0.35, command, switched, read_model), AgentSwitched)
    assert read_model.silent_reads >= 1
