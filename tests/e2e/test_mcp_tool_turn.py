"""A catalogue tool on an MCP server, in a turn, through the whole pipeline: the six services
as processes, a fake OpenAI-compatible model that calls the tool `add` (runs_on `mcp:demo`,
the demo MCP server over stdio), tool-invocation runs it, and the model's next answer uses
the result."""

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from contracts.agents import AgentType
from contracts.base import Message, derive_id
from contracts.commands import CreateSession, SubmitUserMessage
from contracts.session_events import (
    AssistantMessageAppended,
    ToolCallRequested,
    ToolResultRecorded,
    TurnCompleted,
)
from contracts.topics import TopicName
from services.agent_orchestration.settings import OrchestrationSettings
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.integration.service_harness import Publisher, TopicReader
from tests.support.mcp.servers import DEMO_SERVER, EXECUTIONS_ENV, executions_of
from tests.support.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    Reply,
    text_stream,
    tool_call_stream,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

WITHIN_S = 60.0
ADD_TOOL = """
[tools.add]
description = "Add two numbers on the demo MCP server."
runs_on = "mcp:demo"
idempotent = true
parameters = { type = "object", properties = { a = { type = "number" }, b = { type = "number" } }, required = ["a", "b"], additionalProperties = false }
"""


def catalogue_with_add(tmp_path: Path) -> Path:
    """The default catalogue, with `add` (mcp:demo) offered to the ask agent."""
    default = OrchestrationSettings.model_fields["agent_catalogue_path"].default
    source = default or (
        Path(__file__).resolve().parents[2]
        / "services"
        / "agent_orchestration"
        / "default_catalogue.toml"
    )
    text = Path(source).read_text(encoding="utf-8")
    ask = text.index("[agents.ask]")
    offered = text.index('tools = ["switch_agent"]', ask)
    text = (
        text[:offered]
        + 'tools = ["switch_agent", "add"]'
        + text[offered + len('tools = ["switch_agent"]') :]
        + ADD_TOOL
    )
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return path


def answer(request: RecordedRequest) -> Reply | None:
    """Call `add` first; once the prompt carries the tool's result, answer with it."""
    messages = (request.json or {}).get("messages", [])
    results = [m for m in messages if m.get("role") == "tool"]
    if results:
        return text_stream(f"The sum is {results[-1]['content']}.")
    return tool_call_stream("add", json.dumps({"a": 2, "b": 3}))


@pytest.fixture
def executions(tmp_path: Path) -> Path:
    return tmp_path / "executions"


@pytest.fixture
def provider() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer.in_thread() as server:
        server.responder = answer
        yield server


@pytest.fixture
async def pipeline(
    kafka_bootstrap_servers: str,
    mongodb_uri: str,
    mongo_database_name: str,
    unique_suffix: str,
    tmp_path: Path,
    provider: FakeOpenAIServer,
    executions: Path,
) -> AsyncIterator[Pipeline]:
    servers = tmp_path / "mcp_servers.toml"
    servers.write_text(
        "[servers.demo]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(DEMO_SERVER))}]\n"
        f"env = {{ {EXECUTIONS_ENV} = {json.dumps(str(executions))} }}\n",
        encoding="utf-8",
    )
    env = {
        "LLM_BASE_URL": provider.base_url,
        "LLM_API_KEY": "sk-test",
        "LLM_MODEL": "fake-model",
        "AGENT_RUNTIME_AGENT_CATALOGUE_PATH": str(catalogue_with_add(tmp_path)),
        "AGENT_RUNTIME_MCP_SERVERS_FILE": str(servers),
    }
    async with running_pipeline(
        kafka_bootstrap_servers,
        mongodb_uri,
        mongo_database_name,
        unique_suffix,
        tmp_path,
        extra_env=env,
    ) as running:
        yield running


def of_turn(messages: list[Message], kind: type[Message], turn_id: str) -> list[Message]:
    return [m for m in messages if isinstance(m, kind) and getattr(m, "turn_id", None) == turn_id]


async def test_an_mcp_tool_is_called_in_a_turn_and_its_result_answers(
    pipeline: Pipeline, provider: FakeOpenAIServer, executions: Path
) -> None:
    settings = pipeline.settings
    session = f"mcp-turn-{settings.tenant_id}"[:60]
    turn = derive_id("turn", session, "m1")
    bootstrap = settings.kafka_bootstrap_servers
    async with (
        Publisher(bootstrap) as publisher,
        TopicReader(bootstrap, pipeline.catalogue.name(TopicName.SESSION_EVENTS)) as events,
    ):
        await publisher.send(
            pipeline.catalogue.name(TopicName.COMMANDS),
            CreateSession(
                id=f"{session}-create",
                session_id=session,
                tenant_id=settings.tenant_id,
                initial_agent=AgentType.ASK,
            ),
            SubmitUserMessage(
                id=f"{session}-submit-1",
                session_id=session,
                tenant_id=settings.tenant_id,
                message_id="m1",
                content="What is 2 + 3? Use the add tool.",
            ),
        )
        seen = await events.wait_for(
            lambda ms: bool(of_turn(list(ms), TurnCompleted, turn)),
            f"turn {turn} completed",
            within=WITHIN_S,
        )

    requested = of_turn(seen, ToolCallRequested, turn)
    recorded = of_turn(seen, ToolResultRecorded, turn)
    answers = of_turn(seen, AssistantMessageAppended, turn)
    assert len(requested) == 1
    call = requested[0]
    assert isinstance(call, ToolCallRequested)
    assert (call.tool, call.runs_on, call.arguments) == ("add", "mcp:demo", {"a": 2, "b": 3})
    assert len(recorded) == 1
    result = recorded[0]
    assert isinstance(result, ToolResultRecorded)
    assert (result.tool_call_id, result.content, result.is_error, result.source) == (
        call.tool_call_id,
        "5",
        False,
        "mcp:demo",
    )
    assert [a.content for a in answers if isinstance(a, AssistantMessageAppended)] == [
        "The sum is 5."
    ]
    assert executions_of(executions, "add") == ["2+3"]
    # The model's second request carried the tool exchange.
    second = provider.requests[-1].json or {}
    tool_messages = [m for m in second["messages"] if m.get("role") == "tool"]
    assert tool_messages == [{"role": "tool", "tool_call_id": call.tool_call_id, "content": "5"}]
