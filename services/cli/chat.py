"""`agent-runtime chat`: a terminal conversation through the real pipeline."""

import asyncio
import threading
from typing import Any

from rich.console import Console

from contracts.agents import AgentType
from contracts.commands import (
    CancelTurn,
    CloseSession,
    CreateSession,
    SubmitUserMessage,
    SwitchAgent,
)
from contracts.llm import LLMTokenDelta
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    SessionEvent,
    TurnCancelled,
    TurnFailed,
    TurnStarted,
    TurnStopped,
)
from services.cli.session_client import SessionClient, TurnOutcome, new_id
from services.cli.settings import CliSettings

HELP = (
    "Type a message and press Enter. Commands: /stop (while an answer streams), /switch <agent>, "
    "/history, /close, /help, /quit.\n"
    f"Agents: {', '.join(a.value for a in AgentType)}."
)


class ChatPrinter:
    """Renders a session's updates as they stream in."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._streaming: str | None = None

    def show(self, update: SessionEvent | LLMTokenDelta) -> None:
        if isinstance(update, LLMTokenDelta):
            if self._streaming != update.invocation_id:
                self.end_stream()
                self.console.print(f"[bold cyan]{update.agent.value}[/] ", end="")
                self._streaming = update.invocation_id
            self.console.print(update.delta, end="", markup=False, highlight=False, soft_wrap=True)
            return
        self.end_stream()
        if isinstance(update, AgentSwitched):
            by = "you" if update.initiated_by.value == "user" else "orchestration"
            self.console.print(
                f"[yellow]⇄ {update.from_agent.value} → {update.to_agent.value}[/] "
                f"[dim](by {by}; switch {update.switch_count}/10: {update.reason})[/]"
            )
        elif isinstance(update, TurnStarted):
            self.console.print(f"[dim]… {update.agent.value} is thinking[/]")
        elif isinstance(update, CommandRejected):
            self.console.print(f"[red]✗ refused ({update.reason.value}): {update.detail}[/]")
        elif isinstance(update, TurnFailed):
            self.console.print(f"[red]✗ turn failed ({update.error_class}): {update.reason}[/]")
        elif isinstance(update, TurnCancelled):
            self.console.print(f"[yellow]■ stopped ({update.reason.value})[/]")
        elif isinstance(update, TurnStopped) and update.partial_message_id is not None:
            self.console.print("[dim](the partial answer is kept in the history)[/]")

    def end_stream(self) -> None:
        if self._streaming is not None:
            self.console.print()
            self._streaming = None


async def run_chat(settings: CliSettings, session_id: str | None, title: str) -> None:
    console = Console()
    resume = session_id is not None
    session_id = session_id or new_id("session")
    printer = ChatPrinter(console)
    async with SessionClient(settings, session_id) as client:
        if not resume:
            await client.submit(
                CreateSession(
                    id=new_id("cmd"),
                    session_id=session_id,
                    tenant_id=settings.tenant_id,
                    title=title,
                ),
                on_update=printer.show,
            )
            printer.end_stream()
        console.print(f"[bold]session[/] {session_id} [dim](tenant {settings.tenant_id})[/]")
        console.print(f"[dim]{HELP}[/]")
        reader = _LineReader(console)
        while True:
            try:
                line = (await reader.next_line()).strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not line:
                continue
            if line in {"/quit", "/exit"}:
                return
            if line == "/help":
                console.print(HELP)
                continue
            if line == "/history":
                from services.cli.output import Output
                from services.cli.sessions import print_history

                await print_history(
                    settings,
                    settings.tenant_id,
                    session_id,
                    Output(console),
                    limit=50,
                    newest_first=False,
                )
                continue
            command = _command_for(line, settings, session_id)
            if command is None:
                console.print(f"[red]unknown command[/] {line.split()[0]}; {HELP}")
                continue
            try:
                outcome = await _submit_stoppable(client, command, printer, reader, settings)
            except TimeoutError as exc:
                printer.end_stream()
                console.print(f"[red]{exc}[/] — are the services running? (`make up`)")
                continue
            printer.end_stream()
            if isinstance(command, CloseSession) and outcome.rejected is None:
                console.print("[dim]session closed[/]")
                return


async def _submit_stoppable(
    client: SessionClient,
    command: SubmitUserMessage | SwitchAgent | CloseSession | CancelTurn,
    printer: ChatPrinter,
    reader: "_LineReader",
    settings: CliSettings,
) -> TurnOutcome:
    """Submit, and while the answer streams keep reading lines: `/stop` cancels the turn."""
    turn = asyncio.create_task(client.submit(command, on_update=printer.show))
    while not turn.done():
        typed = reader.pending()
        waiting: set[asyncio.Future[Any]] = {turn, typed}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not typed.done():
            continue
        line = reader.take().strip()
        if line == "/stop":
            stop = _command_for(line, settings, client.session_id)
            assert stop is not None
            await client.publish(stop)
        elif line:
            printer.console.print("[dim]an answer is streaming: /stop stops it[/]")
    return await turn


class _LineReader:
    """One pending terminal read at a time, kept across turns (a second reader thread would
    race the first for the same keystrokes)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._pending: asyncio.Future[str] | None = None

    def pending(self) -> "asyncio.Future[str]":
        if self._pending is None:
            self._pending = asyncio.ensure_future(_read_line(self._console))
        return self._pending

    def take(self) -> str:
        """The line read (raises EOFError / KeyboardInterrupt as the terminal did)."""
        done, self._pending = self.pending(), None
        return done.result()

    async def next_line(self) -> str:
        await asyncio.wait({self.pending()})
        return self.take()


def _command_for(
    line: str, settings: CliSettings, session_id: str
) -> SubmitUserMessage | SwitchAgent | CloseSession | CancelTurn | None:
    ids = {"id": new_id("cmd"), "session_id": session_id, "tenant_id": settings.tenant_id}
    if line == "/stop":
        return CancelTurn(**ids, requested_by="chat", reason="stopped in chat")
    if line.startswith("/switch"):
        parts = line.split(maxsplit=2)
        try:
            target = AgentType(parts[1]) if len(parts) > 1 else None
        except ValueError:
            target = None
        if target is None:
            return None
        reason = parts[2] if len(parts) > 2 else "requested in chat"
        return SwitchAgent(**ids, target_agent=target, reason=reason)
    if line == "/close":
        return CloseSession(**ids, reason="closed in chat")
    if line.startswith("/"):
        return None
    return SubmitUserMessage(**ids, message_id=new_id("msg"), content=line)


async def _read_line(console: Console) -> str:
    """Read a line without blocking the event loop.

    A daemon thread rather than `asyncio.to_thread`: on Ctrl-C the loop must be able to end
    while the thread still waits in `input()` (the default executor would be joined first).
    """
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def settle(line: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(line or "")

    def read() -> None:
        try:
            line = console.input("[bold green]you >[/] ")
        except BaseException as exc:  # EOFError, KeyboardInterrupt: hand them to the loop
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, line, None)

    threading.Thread(target=read, name="chat-input", daemon=True).start()
    return await answer
