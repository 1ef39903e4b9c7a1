"""Tool-call conversations through the whole pipeline (issue 20), shared by the offline and
the OpenAI-compatible runs: the test plays the upstream client, answering the client tool
calls it sees on `session-events` with `session.submit_tool_result.v1`."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from contracts.agents import AgentType
from contracts.base import Message, derive_id
from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CreateSession,
    DenyToolCall,
    SubmitToolResult,
    SubmitUserMessage,
)
from contracts.session_events import (
    AssistantMessageAppended,
    CommandRejected,
    RejectionReason,
    ToolApprovalRequested,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnCompleted,
    TurnFailed,
    TurnStopped,
)
from contracts.topics import TopicName
from tests.e2e.conftest import Pipeline
from tests.integration.service_harness import Publisher, TopicReader

WITHIN_S = 60.0

FILES = {"app.py": "print('hello from app.py')", "lib.py": "def helper(): return 42"}


@dataclass
class ToolChat:
    """One session of a coder agent, driven through Kafka like an upstream client."""

    pipeline: Pipeline
    name: str
    publisher: Publisher
    events: TopicReader

    @property
    def session(self) -> str:
        return f"{self.name}-{self.pipeline.settings.tenant_id}"[:60]

    @property
    def tenant(self) -> str:
        return self.pipeline.settings.tenant_id

    async def send(self, *commands: Message) -> None:
        await self.publisher.send(self.pipeline.catalogue.name(TopicName.COMMANDS), *commands)

    async def start(self) -> None:
        await self.send(
            CreateSession(
                id=f"{self.session}-create",
                session_id=self.session,
                tenant_id=self.tenant,
                initial_agent=AgentType.CODER,
            )
        )

    async def ask(self, n: int, content: str) -> str:
        await self.send(
            SubmitUserMessage(
                id=f"{self.session}-submit-{n}",
                session_id=self.session,
                tenant_id=self.tenant,
                message_id=f"m{n}",
                content=content,
            )
        )
        return derive_id("turn", self.session, f"m{n}")

    def of_turn(self, turn_id: str, kind: type[Message]) -> list[Message]:
        return [
            m
            for m in self.events.messages
            if isinstance(m, kind) and getattr(m, "turn_id", None) == turn_id
        ]

    async def wait(
        self, turn_id: str, kind: type[Message], count: int = 1, what: str = ""
    ) -> list[Message]:
        await self.events.wait_for(
            lambda _: len(self.of_turn(turn_id, kind)) >= count,
            what or f"{count} {kind.__name__} of {turn_id}",
            within=WITHIN_S,
        )
        return self.of_turn(turn_id, kind)

    async def answer(self, call: ToolCallRequested, content: str, tenant: str | None = None) -> str:
        command_id = f"{self.session}-result-{call.tool_call_id}-{tenant or 'own'}"
        await self.send(
            SubmitToolResult(
                id=command_id,
                session_id=self.session,
                tenant_id=tenant or self.tenant,
                turn_id=call.turn_id,
                tool_call_id=call.tool_call_id,
                content=content,
            )
        )
        return command_id

    async def answer_file(self, call: ToolCallRequested) -> None:
        path = str(call.arguments["path"])
        await self.answer(call, FILES.get(path, f"no such file: {path}"))

    async def completed_answer(self, turn_id: str) -> str:
        await self.wait(turn_id, TurnCompleted, what=f"turn {turn_id} completed")
        [answer] = self.of_turn(turn_id, AssistantMessageAppended)
        assert isinstance(answer, AssistantMessageAppended)
        return answer.content


def requested(messages: Sequence[Message]) -> list[ToolCallRequested]:
    return [m for m in messages if isinstance(m, ToolCallRequested)]


async def client_tool_round_trip(chat: ToolChat) -> None:
    turn = await chat.ask(1, "read file app.py")
    [call] = requested(await chat.wait(turn, ToolCallRequested))
    assert (call.tool, call.arguments, call.runs_on) == ("read_file", {"path": "app.py"}, "client")
    assert call.agent is AgentType.CODER
    await chat.answer_file(call)
    answer = await chat.completed_answer(turn)
    assert FILES["app.py"] in answer
    [continued] = chat.of_turn(turn, ToolRoundCompleted)
    assert isinstance(continued, ToolRoundCompleted)
    assert continued.agent is AgentType.CODER


async def parallel_calls_answered_out_of_order(chat: ToolChat) -> None:
    turn = await chat.ask(2, "read file app.py and lib.py")
    calls = requested(await chat.wait(turn, ToolCallRequested, count=2))
    assert [c.arguments["path"] for c in calls] == ["app.py", "lib.py"]
    first, second = calls
    await chat.answer_file(second)
    await chat.wait(turn, ToolResultRecorded, what="the second call's result recorded")
    assert not chat.of_turn(turn, ToolRoundCompleted)  # still waiting for the first
    await chat.answer_file(first)
    await chat.answer_file(first)  # a repeat changes nothing
    answer = await chat.completed_answer(turn)
    assert FILES["app.py"] in answer
    assert FILES["lib.py"] in answer
    assert len(chat.of_turn(turn, ToolResultRecorded)) == 2


async def another_tenants_result_is_refused(chat: ToolChat) -> None:
    turn = await chat.ask(3, "read file app.py")
    [call] = requested(await chat.wait(turn, ToolCallRequested))
    foreign = await chat.answer(call, "forged content", tenant="tenant-intruder")
    await chat.events.wait_for(
        lambda ms: any(
            isinstance(m, CommandRejected) and m.rejected_command_id == foreign for m in ms
        ),
        "the foreign result refused",
        within=WITHIN_S,
    )
    [refusal] = [
        m
        for m in chat.events.messages
        if isinstance(m, CommandRejected) and m.rejected_command_id == foreign
    ]
    assert isinstance(refusal, CommandRejected)
    assert refusal.reason is RejectionReason.UNKNOWN_SESSION
    assert not chat.of_turn(turn, ToolResultRecorded)
    await chat.answer_file(call)
    answer = await chat.completed_answer(turn)
    assert "forged content" not in answer


async def approval_approved_then_denied(chat: ToolChat) -> None:
    approved = await chat.ask(4, "write file notes.txt with hello")
    [ask] = await chat.wait(approved, ToolApprovalRequested)
    assert isinstance(ask, ToolApprovalRequested)
    assert ask.arguments == {"path": "notes.txt", "content": "hello"}
    assert not chat.of_turn(approved, ToolCallRequested)  # nothing runs before approval
    which = {"session_id": chat.session, "tenant_id": chat.tenant, "turn_id": approved}
    await chat.send(
        ApproveToolCall(
            id=f"{chat.session}-approve", tool_call_id=ask.tool_call_id, requested_by="e2e", **which
        )
    )
    [call] = requested(await chat.wait(approved, ToolCallRequested))
    await chat.answer(call, "created notes.txt")
    assert "created notes.txt" in await chat.completed_answer(approved)

    denied = await chat.ask(5, "write file other.txt with nope")
    [ask] = await chat.wait(denied, ToolApprovalRequested)
    assert isinstance(ask, ToolApprovalRequested)
    which = {"session_id": chat.session, "tenant_id": chat.tenant, "turn_id": denied}
    await chat.send(
        DenyToolCall(
            id=f"{chat.session}-deny",
            tool_call_id=ask.tool_call_id,
            requested_by="e2e",
            reason="not in this repo",
            **which,
        )
    )
    answer = await chat.completed_answer(denied)
    assert "denied: not in this repo" in answer
    assert not chat.of_turn(denied, ToolCallRequested)


async def cancel_while_awaiting_tools(chat: ToolChat) -> None:
    turn = await chat.ask(6, "read file app.py")
    [call] = requested(await chat.wait(turn, ToolCallRequested))
    await chat.send(
        CancelTurn(
            id=f"{chat.session}-cancel",
            session_id=chat.session,
            tenant_id=chat.tenant,
            requested_by="e2e",
        )
    )
    await chat.wait(turn, TurnStopped, what="the turn awaiting tools stopped at once")
    late = await chat.answer(call, "too late")
    await chat.events.wait_for(
        lambda ms: any(
            isinstance(m, CommandRejected)
            and m.rejected_command_id == late
            and m.reason is RejectionReason.TOOL_CALL_NOT_PENDING
            for m in ms
        ),
        "the late result refused",
        within=WITHIN_S,
    )


async def deadline_fails_the_turn(chat: ToolChat) -> None:
    turn = await chat.ask(7, "list directory src")
    await chat.wait(turn, ToolCallRequested)
    [failed] = await chat.wait(turn, TurnFailed, what="the turn failed at its tool deadline")
    assert isinstance(failed, TurnFailed)
    assert failed.error_class == "tool_deadline_exceeded"
    assert "list_directory" in failed.reason


Scenario = Callable[[ToolChat], Awaitable[None]]


async def run_scenarios(pipeline: Pipeline, scenarios: Sequence[Scenario]) -> None:
    """Each scenario on a session of its own, all at once on one pipeline."""
    bootstrap = pipeline.settings.kafka_bootstrap_servers
    async with (
        Publisher(bootstrap) as publisher,
        TopicReader(bootstrap, pipeline.catalogue.name(TopicName.SESSION_EVENTS)) as events,
    ):
        chats = [
            ToolChat(pipeline, scenario.__name__.replace("_", "-")[:30], publisher, events)
            for scenario in scenarios
        ]
        for chat in chats:
            await chat.start()
        await asyncio.gather(
            *(scenario(chat) for scenario, chat in zip(scenarios, chats, strict=True))
        )
