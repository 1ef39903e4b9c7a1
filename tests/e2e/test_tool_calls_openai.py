"""Client-executed tools end to end against a real local OpenAI-compatible server (issue 20):
llm-invocation's OpenAI provider talks HTTP to a fake model that emits tool calls (parallel
ones for two files, in OpenAI's streamed wire format) and, once the prompt ends with `tool`
messages, answers from them. The prompts it receives are checked for the chat-completions
shape of the tool exchange."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from contracts.llm import ToolDefinition
from services.llm_invocation.providers.offline_tools import planned_calls
from tests.e2e.conftest import Pipeline
from tests.e2e.tool_conversations import (
    another_tenants_result_is_refused,
    approval_approved_then_denied,
    client_tool_round_trip,
    parallel_calls_answered_out_of_order,
    run_scenarios,
)
from tests.support.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    parallel_tool_calls_stream,
    text_stream,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def model(request: RecordedRequest) -> Reply | None:
    """A model that calls the tools the user's words ask for, then reports their results."""
    body: dict[str, Any] = request.json or {}
    messages = body.get("messages", [])
    if messages and messages[-1]["role"] == "tool":
        results = []
        for message in reversed(messages):
            if message["role"] != "tool":
                break
            results.append(message["content"])
        return text_stream("Tool results: " + " | ".join(reversed(results)))
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    offered = [
        ToolDefinition(name=t["function"]["name"], description="", parameters={})
        for t in body.get("tools", [])
    ]
    calls = planned_calls(user, offered)
    if not calls:
        return None
    return parallel_tool_calls_stream([(c.name, c.arguments) for c in calls], text="On it.")


@pytest.fixture
def provider() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer.in_thread(responder=model) as server:
        yield server


@pytest.fixture
def pipeline_env(provider: FakeOpenAIServer) -> dict[str, str]:
    return {
        "LLM_BASE_URL": provider.base_url,
        "LLM_API_KEY": "sk-test",
        "LLM_MODEL": "fake-model",
        "AGENT_RUNTIME_TOOL_CALL_TIMEOUT_S": "120",
    }


async def test_tool_calls_with_an_openai_compatible_model(
    pipeline: Pipeline, provider: FakeOpenAIServer
) -> None:
    await run_scenarios(
        pipeline,
        [
            client_tool_round_trip,
            parallel_calls_answered_out_of_order,
            another_tenants_result_is_refused,
            approval_approved_then_denied,
        ],
    )
    continued = [
        r.json
        for r in provider.requests
        if r.json is not None and r.json["messages"][-1]["role"] == "tool"
    ]
    assert len(continued) == 5  # one continuation per answered round
    parallel = next(body for body in continued if len(_tool_messages(body)) == 2)
    [assistant] = [m for m in parallel["messages"] if m.get("tool_calls")]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == "On it."
    ids = [call["id"] for call in assistant["tool_calls"]]
    assert [m["tool_call_id"] for m in _tool_messages(parallel)] == ids
    assert [json.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"path": "app.py"},
        {"path": "lib.py"},
    ]
    assert {t["function"]["name"] for t in parallel["tools"]} >= {"read_file", "list_directory"}


def _tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]
