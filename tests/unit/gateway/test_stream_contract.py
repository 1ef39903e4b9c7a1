"""The stream contract: every session event has an SSE name, cursors round-trip, a full sink
drops its stream instead of growing."""

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.agents import AgentType
from contracts.llm import LLMTokenDelta
from contracts.registry import TOPIC_MESSAGES
from contracts.stream_events import STREAM_EVENTS, DropReason, stream_payload
from contracts.stream_events import Cursor as StreamCursor
from contracts.topics import TopicName
from services.gateway.stream_cursor import Cursor, InvalidCursor, StreamTopic
from services.gateway.stream_sink import StreamItem, StreamSink

pytestmark = pytest.mark.unit


def sample_delta(seq: int) -> LLMTokenDelta:
    return LLMTokenDelta(
        id=f"d-{seq}",
        session_id="s-1",
        tenant_id="acme",
        invocation_id="inv-1",
        turn_id="turn-1",
        agent=AgentType.ORCHESTRATOR,
        seq=seq,
        delta=f"<{seq}>",
    )


def test_every_session_event_and_the_token_delta_are_streamed() -> None:
    streamed = set(STREAM_EVENTS)
    for model in TOPIC_MESSAGES[TopicName.SESSION_EVENTS]:
        assert model in streamed, f"{model.__name__} has no SSE event name"
    assert len(set(STREAM_EVENTS.values())) == len(STREAM_EVENTS)


def test_payloads_hide_the_tenant() -> None:
    assert "tenant_id" not in stream_payload(sample_delta(0))


def test_cursor_round_trip_and_moves_per_topic() -> None:
    cursor = Cursor(3, 10, 20)
    assert Cursor.parse(str(cursor)) == cursor
    assert cursor.past(StreamTopic.LLM_STREAM, 25) == Cursor(3, 10, 26)
    assert cursor.past(StreamTopic.SESSION_EVENTS, 10).next_offset(StreamTopic.SESSION_EVENTS) == 11
    for bad in ("", "v1.1.2", "v2.1.2.3", "v1.a.2.3", "v1.1.2.3.4"):
        with pytest.raises(InvalidCursor):
            Cursor.parse(bad)


@pytest.mark.parametrize("text", ["v1.\u0661.0.0", "v1.1.\uff10.0", "v1.1.0.\u09e6"])
def test_an_id_with_other_scripts_digits_is_malformed(text: str) -> None:
    """ASCII digits only, as the published pattern means in JSON Schema: Python's and
    pydantic's `\\d` also match e.g. Arabic-Indic digits, which `int()` then reads."""
    with pytest.raises(InvalidCursor):
        Cursor.parse(text)
    with pytest.raises(ValidationError):
        TypeAdapter(StreamCursor).validate_python(text)


async def test_a_full_sink_drops_its_stream_and_keeps_what_it_holds() -> None:
    sink = StreamSink("s-1", capacity=2)
    items = [StreamItem(StreamTopic.LLM_STREAM, 0, i, 0, sample_delta(i)) for i in range(4)]
    for item in items:
        sink.offer(item)
    assert sink.dropped is DropReason.SLOW_CLIENT
    assert [await sink.next(0.1) for _ in range(3)] == [items[0], items[1], None]


async def test_an_ended_sink_gives_what_it_holds_then_ends_without_a_drop() -> None:
    sink = StreamSink("s-1", capacity=10)
    items = [StreamItem(StreamTopic.LLM_STREAM, 0, i, 0, sample_delta(i)) for i in range(3)]
    sink.offer(items[0])
    sink.end()
    sink.offer(items[1])  # after the end: not sent
    sink.end()  # a second end changes nothing
    assert [await sink.next(0.1) for _ in range(2)] == [items[0], None]
    assert (sink.ended, sink.dropped) == (True, None)
