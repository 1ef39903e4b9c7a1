"""The session-events watcher reads cancellations back at start (a request redelivered after a
crash between a cancel and its abort must not be paid for again), and only within its lookback."""

import asyncio
from datetime import UTC, datetime

import pytest

from contracts.agents import AgentType
from contracts.mid_turn import CancellationReason
from contracts.session_events import TurnCancelled
from contracts.topics import TopicName
from services.llm_invocation.in_flight import InFlightInvocations
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.session_watch import SessionEventsWatcher
from tests.integration.llm_invocation.harness import provisioned_topics
from tests.integration.service_harness import publish

pytestmark = pytest.mark.integration


def _cancelled(turn_id: str, *, queued: bool = False) -> TurnCancelled:
    return TurnCancelled(
        id=f"e-{turn_id}",
        session_id=f"s-{turn_id}",
        tenant_id="acme",
        occurred_at=datetime.now(UTC),
        turn_id=turn_id,
        user_message_id="m-1",
        agent=None if queued else AgentType.ASK,
        step=None if queued else 0,
        reason=CancellationReason.CANCELLED,
        queued=queued,
    )


async def test_cancellations_published_before_the_start_are_known_once_ready(
    kafka_bootstrap_servers: str, unique_suffix: str
) -> None:
    async with provisioned_topics(kafka_bootstrap_servers, f"rb-{unique_suffix}.") as catalogue:
        topic = catalogue.name(TopicName.SESSION_EVENTS)
        await publish(
            kafka_bootstrap_servers,
            topic,
            _cancelled("t-before"),
            _cancelled("t-queued", queued=True),
        )
        connection = LLMInvocationSettings(kafka_bootstrap_servers=kafka_bootstrap_servers)
        with_lookback = SessionEventsWatcher(
            connection, topic, InFlightInvocations(), lookback_s=600
        )
        without = SessionEventsWatcher(connection, topic, InFlightInvocations(), lookback_s=0)
        for watcher in (with_lookback, without):
            await watcher.start()
        try:
            await with_lookback.ready()
            await without.ready()
            assert with_lookback.cancelled.reason("t-before") == "cancelled"
            assert with_lookback.cancelled.reason("t-queued") is None  # nothing of it ran
            assert without.cancelled.reason("t-before") is None

            await publish(kafka_bootstrap_servers, topic, _cancelled("t-after"))
            async with asyncio.timeout(10):
                while without.cancelled.reason("t-after") is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            for watcher in (with_lookback, without):
                await watcher.stop()
