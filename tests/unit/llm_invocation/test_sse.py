"""Server-sent events decoding."""

import pytest

from services.llm_invocation.providers.sse import ServerSentEvent, SSEDecoder

pytestmark = pytest.mark.unit


def _decode(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for line in lines for event in decoder.feed(line)]
    return events + list(decoder.close())


def test_data_lines_end_with_a_blank_line() -> None:
    assert _decode(["data: one", "", "data: two", ""]) == [
        ServerSentEvent("one"),
        ServerSentEvent("two"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert _decode(["data: a", "data: b", ""]) == [ServerSentEvent("a\nb")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert _decode([": keep-alive", "retry: 10", "garbage line", "data: x", ""]) == [
        ServerSentEvent("x")
    ]


def test_event_and_id_fields_are_kept() -> None:
    assert _decode(["event: error", "id: 7", "data: boom", ""]) == [
        ServerSentEvent("boom", event="error", id="7")
    ]


def test_only_one_leading_space_is_stripped() -> None:
    assert _decode(["data:  two spaces", "data:none", ""]) == [ServerSentEvent(" two spaces\nnone")]


def test_an_unterminated_last_event_is_delivered_at_close() -> None:
    assert _decode(["data: last"]) == [ServerSentEvent("last")]


def test_blank_lines_without_data_yield_nothing() -> None:
    assert _decode(["", "", "event: ping", ""]) == []


def test_one_byte_order_mark_at_the_start_of_the_stream_is_ignored() -> None:
    # WHATWG: one leading U+FEFF is ignored. Kept, the field read "\ufeffdata" (unknown) and
    # the first chunk of the answer was lost. Only at the very start, and only one.
    assert _decode(["\ufeffdata: first", "", "\ufeffdata: x", ""]) == [ServerSentEvent("first")]
