"""The chat's tool desk: runs client tool calls once each, asks y/n for approvals one at a
time, and publishes the answers as commands."""

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from contracts.agents import AgentType
from contracts.commands import ApproveToolCall, Command, DenyToolCall, SubmitToolResult
from contracts.session_events import (
    AgentSwitched,
    SwitchInitiator,
    ToolApprovalRequested,
    ToolCallRequested,
)
from services.cli.chat import ChatPrinter, ToolDesk
from services.cli.client_tools import ClientTools
from services.cli.settings import CliSettings

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@dataclass
class Outlet:
    session_id: str = "s-1"
    published: list[Command] = field(default_factory=list)

    async def publish(self, command: Command) -> None:
        self.published.append(command)


def _fields(
    tool_call_id: str, tool: str, arguments: dict[str, Any], runs_on: str
) -> dict[str, Any]:
    return {
        "id": f"event-{tool_call_id}",
        "session_id": "s-1",
        "tenant_id": "local",
        "occurred_at": AT,
        "turn_id": "turn-1",
        "tool_call_id": tool_call_id,
        "tool": tool,
        "step": 1,
        "agent": AgentType.CODER,
        "arguments": arguments,
        "runs_on": runs_on,
        "deadline": AT,
    }


def requested(
    tool_call_id: str, tool: str = "read_file", runs_on: str = "client"
) -> ToolCallRequested:
    return ToolCallRequested(**_fields(tool_call_id, tool, {"path": "a.txt"}, runs_on))


def approval(tool_call_id: str) -> ToolApprovalRequested:
    arguments = {"path": "n.txt", "content": "x"}
    return ToolApprovalRequested(**_fields(tool_call_id, "write_file", arguments, "client"))


@pytest.fixture
def desk(tmp_path: Path) -> tuple[ToolDesk, Outlet, io.StringIO]:
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    out = io.StringIO()
    outlet = Outlet()
    printer = ChatPrinter(Console(file=out, width=200))
    return ToolDesk(outlet, printer, ClientTools(tmp_path), CliSettings()), outlet, out


async def test_a_client_call_is_run_once_and_answered(
    desk: tuple[ToolDesk, Outlet, io.StringIO],
) -> None:
    tool_desk, outlet, _ = desk
    tool_desk.note(requested("c1"))
    tool_desk.note(requested("c1"))  # a redelivered event
    tool_desk.note(requested("c2", tool="search", runs_on="mcp:docs"))  # not the chat's to run
    assert tool_desk.work.is_set()
    await tool_desk.run_calls()
    [answer] = outlet.published
    assert isinstance(answer, SubmitToolResult)
    assert (answer.tool_call_id, answer.turn_id, answer.content) == ("c1", "turn-1", "alpha")
    assert not answer.is_error


async def test_approvals_are_asked_one_at_a_time(
    desk: tuple[ToolDesk, Outlet, io.StringIO],
) -> None:
    tool_desk, outlet, out = desk
    tool_desk.note(approval("c1"))
    tool_desk.note(approval("c2"))
    tool_desk.ask_next_approval()
    assert tool_desk.asking is not None
    assert tool_desk.asking.tool_call_id == "c1"
    assert "allow coder to run write_file?" in out.getvalue()
    await tool_desk.answer_approval("y")
    assert tool_desk.asking is not None
    assert tool_desk.asking.tool_call_id == "c2"  # the next question follows
    await tool_desk.answer_approval("no")
    approve, deny = outlet.published
    assert isinstance(approve, ApproveToolCall)
    assert approve.tool_call_id == "c1"
    assert isinstance(deny, DenyToolCall)
    assert deny.tool_call_id == "c2"
    assert tool_desk.asking is None


async def test_only_y_or_n_answers_an_approval(
    desk: tuple[ToolDesk, Outlet, io.StringIO],
) -> None:
    """Anything else asks again: "yes please" or a message typed ahead used to deny."""
    tool_desk, outlet, out = desk
    tool_desk.note(approval("c1"))
    tool_desk.ask_next_approval()
    for line in ("yes please", "", "sure"):
        await tool_desk.answer_approval(line)
    assert outlet.published == []
    assert tool_desk.asking is not None
    assert out.getvalue().count("type y or n and press Enter") == 4  # asked, then 3 times again
    await tool_desk.answer_approval(" Y ")
    [approve] = outlet.published
    assert isinstance(approve, ApproveToolCall)


def test_text_from_the_model_or_the_user_is_shown_as_typed_never_as_markup() -> None:
    """Arguments, a switch's reason, a denial: "[/]" in them raised rich's MarkupError out of
    the chat, and "[red]" vanished."""
    out = io.StringIO()
    printer = ChatPrinter(Console(file=out, width=200))
    printer.show(ToolCallRequested(**_fields("c1", "read_file", {"path": "[/]a[red]"}, "client")))
    printer.show(
        AgentSwitched(
            id="e-1",
            session_id="s-1",
            tenant_id="local",
            from_agent=AgentType.ORCHESTRATOR,
            to_agent=AgentType.CODER,
            reason="see [/] and [bold]",
            switch_count=1,
            initiated_by=SwitchInitiator.USER,
        )
    )
    shown = out.getvalue()
    assert '{"path": "[/]a[red]"}' in shown
    assert "see [/] and [bold]" in shown
