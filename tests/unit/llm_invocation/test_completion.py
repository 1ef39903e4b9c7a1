"""Folding stream events into one completion, within the contract's limits."""

import pytest

from contracts.limits import MAX_TOOL_ARGUMENTS_LENGTH, MAX_TOOL_CALLS
from contracts.llm import FinishReason, ToolCall, Usage
from services.llm_invocation.completion import CompletionBuilder
from services.llm_invocation.providers.openai_provider import _usage
from services.llm_invocation.providers.provider_errors import BadResponse
from services.llm_invocation.providers.stream_events import StreamFinished, TextDelta, ToolCallDelta

pytestmark = pytest.mark.unit


def test_text_and_usage() -> None:
    builder = CompletionBuilder()
    assert builder.add(TextDelta("Hel")) == "Hel"
    assert builder.add(TextDelta("lo")) == "lo"
    builder.add(
        StreamFinished(
            FinishReason.STOP, Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
        )
    )
    completion = builder.build()
    assert completion.content == "Hello"
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage.total_tokens == 5


def test_tool_call_fragments_are_assembled_by_index() -> None:
    builder = CompletionBuilder()
    for fragment in (
        ToolCallDelta(index=0, id="call_a", name="switch_agent", arguments='{"tar'),
        ToolCallDelta(index=1, id="call_b", name="other", arguments="{}"),
        ToolCallDelta(index=0, arguments='get": "coder"}'),
    ):
        assert builder.add(fragment) == ""
    builder.add(StreamFinished(FinishReason.TOOL_CALLS))
    completion = builder.build()
    assert completion.tool_calls == [
        ToolCall(id="call_a", name="switch_agent", arguments='{"target": "coder"}'),
        ToolCall(id="call_b", name="other", arguments="{}"),
    ]


def test_tool_calls_with_a_stop_finish_are_reported_as_tool_calls() -> None:
    builder = CompletionBuilder()
    builder.add(ToolCallDelta(index=0, id="c", name="f", arguments="{}"))
    builder.add(StreamFinished(FinishReason.STOP))
    assert builder.build().finish_reason is FinishReason.TOOL_CALLS


def test_a_stream_without_a_finish_is_a_bad_response() -> None:
    builder = CompletionBuilder()
    builder.add(TextDelta("partial"))
    with pytest.raises(BadResponse):
        builder.build()


def test_missing_usage_is_estimated() -> None:
    builder = CompletionBuilder()
    builder.add(TextDelta("x" * 40))
    builder.add(StreamFinished(FinishReason.STOP))
    usage = builder.build(prompt_tokens_estimate=10).usage
    assert usage.prompt_tokens == 10
    assert usage.completion_tokens == 10
    assert usage.total_tokens == 20


def test_content_over_the_limit_is_cut_and_finishes_with_length() -> None:
    builder = CompletionBuilder(max_content_length=10)
    assert builder.add(TextDelta("12345678")) == "12345678"
    assert builder.add(TextDelta("abcdef")) == "ab"
    assert builder.truncated
    assert builder.finished
    completion = builder.build()
    assert completion.content == "12345678ab"
    assert completion.finish_reason is FinishReason.LENGTH


def test_too_many_tool_calls_is_a_bad_response() -> None:
    builder = CompletionBuilder()
    for index in range(MAX_TOOL_CALLS):
        builder.add(ToolCallDelta(index=index, id=f"c{index}", name="f"))
    with pytest.raises(BadResponse):
        builder.add(ToolCallDelta(index=MAX_TOOL_CALLS, id="one-more", name="f"))


def test_oversized_tool_arguments_are_a_bad_response() -> None:
    builder = CompletionBuilder()
    with pytest.raises(BadResponse):
        builder.add(
            ToolCallDelta(
                index=0, id="c", name="f", arguments="x" * (MAX_TOOL_ARGUMENTS_LENGTH + 1)
            )
        )


def test_a_tool_call_without_a_valid_name_is_a_bad_response() -> None:
    builder = CompletionBuilder()
    builder.add(ToolCallDelta(index=0, id="c", name="not a name!", arguments="{}"))
    builder.add(StreamFinished(FinishReason.TOOL_CALLS))
    with pytest.raises(BadResponse):
        builder.build()


def test_a_providers_token_count_beyond_64_bits_is_a_bad_response() -> None:
    """Kept as it came, it would be a kept result MongoDB cannot store, failing the group
    commit of every other call's result with it (tests/unit/contracts/test_storable_numbers)."""
    with pytest.raises(BadResponse, match="malformed usage"):
        _usage({"usage": {"prompt_tokens": 10**20, "completion_tokens": 1}})
