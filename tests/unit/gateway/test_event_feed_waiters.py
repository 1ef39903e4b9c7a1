"""What a request's waiter reads from the session-event feed: its command's decision first.

A keyed retry of a message that was accepted before (its first answer was `pending`) publishes
the same command again; session-commands applies it once and publishes nothing new, while
the message's turn keeps publishing. Those turn events must not pass for the decision."""

from contracts.codec import encode
from contracts.mid_turn import CancellationReason
from contracts.session_events import TurnCancelled, UserMessageAccepted
from services.gateway.event_feed import SessionEventFeed

SESSION = "s-feed"
COMMAND = "cmd-1"
TURN = "turn-1"


def _cancelled() -> TurnCancelled:
    return TurnCancelled(
        id="e-cancelled",
        session_id=SESSION,
        tenant_id="t",
        turn_id=TURN,
        user_message_id="m-1",
        reason=CancellationReason.CANCELLED,
    )


def _accepted() -> UserMessageAccepted:
    return UserMessageAccepted(
        id="e-accepted",
        session_id=SESSION,
        tenant_id="t",
        message_id="m-1",
        seq=1,
        content="hi",
        queued=False,
    )


def _deliver(
    feed: SessionEventFeed, event: TurnCancelled | UserMessageAccepted, cause: str
) -> None:
    record = encode(event, source="test", causation_id=cause)
    feed._dispatch(record.key, record.value, list(record.headers))


def test_a_turn_event_before_the_decision_is_not_read_as_the_decision() -> None:
    feed = SessionEventFeed("127.0.0.1:1", "t.session-events")
    with feed.watch(SESSION, command_id=COMMAND, turn_id=TURN) as watch:
        _deliver(feed, _cancelled(), cause="cmd-cancel")
        assert watch.events.empty()

        _deliver(feed, _accepted(), cause=COMMAND)
        _deliver(feed, _cancelled(), cause="cmd-cancel")
        assert [type(watch.events.get_nowait()) for _ in range(2)] == [
            UserMessageAccepted,
            TurnCancelled,
        ]


def test_a_waiter_for_a_turn_alone_reads_its_events() -> None:
    feed = SessionEventFeed("127.0.0.1:1", "t.session-events")
    with feed.watch(SESSION, turn_id=TURN) as watch:
        _deliver(feed, _cancelled(), cause="cmd-cancel")
        assert isinstance(watch.events.get_nowait(), TurnCancelled)
