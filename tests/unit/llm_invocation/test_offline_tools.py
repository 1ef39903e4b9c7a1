"""The offline provider's deterministic tool calling: words → tool calls on an agent offered
the tool, parallel calls for several files, then an answer from the results."""

import json

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.limits import MAX_TOOL_ARGUMENTS_LENGTH
from contracts.llm import ChatMessage, FinishReason, LLMRequested, ToolCall, ToolDefinition
from services.llm_invocation.completion import CompletionBuilder
from services.llm_invocation.providers.offline_provider import OfflineProvider
from services.llm_invocation.providers.offline_routing import classify
from services.llm_invocation.providers.offline_tools import planned_calls
from services.llm_invocation.providers.stream_events import StreamEvent, TextDelta
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit

FILE_TOOLS = [
    ToolDefinition(name=name, description=name, parameters={"type": "object"})
    for name in ("read_file", "list_directory", "write_file")
]


def _request(text: str, tools: list[ToolDefinition] = FILE_TOOLS) -> LLMRequested:
    request = llm_request(text, agent=AgentType.CODER)
    return request.model_copy(update={"tools": tools})


async def _events(request: LLMRequested) -> list[StreamEvent]:
    return [event async for event in OfflineProvider().stream(request)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("read file app.py", [("read_file", {"path": "app.py"})]),
        (
            "Read files a.py, src/b.py",
            [("read_file", {"path": "a.py"}), ("read_file", {"path": "src/b.py"})],
        ),
        (
            "read file a.py and list directory src",
            [("read_file", {"path": "a.py"}), ("list_directory", {"path": "src"})],
        ),
        ("list the folder", [("list_directory", {"path": "."})]),
        (
            "write file notes.txt with hello world",
            [("write_file", {"path": "notes.txt", "content": "hello world"})],
        ),
        ("what is a file?", []),
    ],
)
def test_words_become_tool_calls(text: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    calls = planned_calls(text, FILE_TOOLS)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == expected


def test_a_tool_that_is_not_offered_is_not_called() -> None:
    assert planned_calls("read file app.py", FILE_TOOLS[1:]) == []


def test_file_requests_route_to_the_coder_and_other_routing_is_unchanged() -> None:
    assert classify("read file app.py") is AgentType.CODER
    assert classify("list directory src") is AgentType.CODER
    assert classify("read file app.py, it crashes") is AgentType.DEBUG
    assert classify("What is a monad?") is AgentType.ASK


async def test_two_files_stream_two_parallel_calls() -> None:
    events = await _events(_request("read file a.py and b.py"))
    builder = CompletionBuilder()
    for event in events:
        builder.add(event)
    completion = builder.build()
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert [(c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("read_file", {"path": "a.py"}),
        ("read_file", {"path": "b.py"}),
    ]
    assert len({c.id for c in completion.tool_calls}) == 2
    assert events == await _events(_request("read file a.py and b.py"))  # deterministic


async def test_after_the_results_it_answers_from_them() -> None:
    request = _request("read file a.py")
    call = ToolCall(id="call_1", name="read_file", arguments='{"path": "a.py"}')
    request = request.model_copy(
        update={
            "messages": [
                *request.messages,
                ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=[call]),
                ChatMessage(role=MessageRole.TOOL, content="print('hi')", tool_call_id="call_1"),
            ]
        }
    )
    events = await _events(request)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert 'read_file {"path": "a.py"}: print(\'hi\')' in text


async def test_a_long_text_to_write_is_cut_to_a_call_the_contract_allows() -> None:
    # Arguments over MAX_TOOL_ARGUMENTS_LENGTH are a bad response: the turn failed and the
    # offline circuit, shared by every session, counted a fault, for a long pasted text.
    text = 'quote " and newline\n ' * 1_500  # ~30,000 characters, more once JSON-escaped
    events = await _events(_request(f"write file notes.txt with {text}"))
    builder = CompletionBuilder()
    for event in events:
        builder.add(event)
    (call,) = builder.build().tool_calls
    arguments = json.loads(call.arguments)
    assert len(call.arguments) <= MAX_TOOL_ARGUMENTS_LENGTH
    assert arguments["path"] == "notes.txt"
    assert text.strip().startswith(arguments["content"])
    assert len(arguments["content"]) > 10_000
