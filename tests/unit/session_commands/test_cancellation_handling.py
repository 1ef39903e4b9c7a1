"""The handler's side of a cancel: the metric counts each cancellation once, by reason."""

import pytest

from contracts.codec import encode
from contracts.mid_turn import MidTurnPolicy
from contracts.topics import TopicCatalogue, TopicName
from services.runtime.record import Record
from services.session_commands.handler import SessionCommandHandler
from services.session_commands.metrics import TURNS_CANCELLED
from tests.support.session_commands.cancellation_scenario import cancel_turn
from tests.support.session_commands.memory_store import MemoryStore
from tests.support.session_commands.scenario import T0, create, submit

pytestmark = pytest.mark.unit

TOPICS = TopicCatalogue(prefix="t.")


async def _nowhere(topic: str, record: object) -> None:
    return None


def _record(message: object) -> Record:
    encoded = encode(message, source="test")  # type: ignore[arg-type]
    topic = TOPICS.name(TopicName.COMMANDS)
    return Record(topic, 0, 0, encoded.key, encoded.value, tuple(encoded.headers))


def _count(reason: str) -> float:
    return float(TURNS_CANCELLED.labels(reason)._value.get())


async def test_turns_cancelled_total_counts_each_cancellation_once_by_reason() -> None:
    handle = SessionCommandHandler(
        topics=TOPICS,
        repository=MemoryStore(),
        publish=_nowhere,
        clock=lambda: T0,
        span_traceparent=lambda: None,
    )
    cancelled, interrupted = _count("cancelled"), _count("interrupted")
    stop = cancel_turn()
    await handle(_record(create(mid_turn_policy=MidTurnPolicy.INTERRUPT)))
    await handle(_record(submit("first")))
    await handle(_record(stop))
    await handle(_record(stop))  # redelivered: remembered, not counted again
    await handle(_record(submit("second")))  # the turn is already cancelled: no second count
    assert (_count("cancelled") - cancelled, _count("interrupted") - interrupted) == (1, 0)
