"""`Prefer: wait=N` / `?wait=` / `respond-async`, and the turn id known before processing."""

from contracts.base import utc_now
from contracts.commands import CreateSession, SubmitUserMessage
from contracts.session_events import TurnStarted
from services.gateway.routes.messages import parse_prefer, turn_id_for
from services.session_commands.domain.decider import decide


def test_wait_from_header_or_query_bounded() -> None:
    assert parse_prefer("wait=30", None, 120) == (30.0, False)
    assert parse_prefer("respond-async, wait=5", None, 120) == (5.0, False)
    assert parse_prefer(None, 7.5, 120) == (7.5, False)
    assert parse_prefer("wait=999", None, 120) == (120.0, False)
    assert parse_prefer("wait=3", 1.0, 120) == (1.0, False)  # the query wins
    assert parse_prefer(None, None, 120) == (0.0, False)
    assert parse_prefer("respond-async", None, 120) == (0.0, True)
    assert parse_prefer("handling=lenient", None, 120) == (0.0, False)


def test_a_quoted_wait_is_a_wait() -> None:
    """RFC 7240 allows a quoted-string value: `Prefer: wait="5"` is `wait=5`."""
    assert parse_prefer('wait="5"', None, 120) == (5.0, False)
    assert parse_prefer('respond-async; wait = "2.5"', None, 120) == (2.5, False)


def test_the_gateway_derives_the_turn_id_session_commands_gives() -> None:
    now = utc_now()
    created = decide(None, CreateSession(id="c-1", session_id="s-1", tenant_id="t"), now=now)
    submit = SubmitUserMessage(
        id="c-2", session_id="s-1", tenant_id="t", message_id="m-1", content="hi"
    )
    started = [
        e for e in decide(created.state, submit, now=now).events if isinstance(e, TurnStarted)
    ]
    assert [e.turn_id for e in started] == [turn_id_for("s-1", "m-1")]
