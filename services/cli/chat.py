"""`agent-runtime chat`: a terminal conversation through the real pipeline."""

import asyncio
import contextlib
import json
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from contracts.agents import AgentType
from contracts.commands import (
    ApproveToolCall,
    CancelTurn,
    CloseSession,
    Command,
    CreateSession,
    DenyToolCall,
    SubmitToolResult,
    SubmitUserMessage,
    SwitchAgent,
)
from contracts.llm import LLMTokenDelta
from contracts.read_model import AwaitedToolCall
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    SessionEvent,
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
)
from contracts.tools import CLIENT
from services.cli.client_tools import ClientTools
from services.cli.errors import BrokerUnreachable, CliError, UsageProblem
from services.cli.session_client import SessionClient, TurnOutcome, new_id
from services.cli.settings import CliSettings

HELP = (
    "Type a message and press Enter. Commands: /stop (while an answer streams), /switch <agent>, "
    "/history, /close, /help, /quit.\n"
    f"Agents: {', '.join(a.value for a in AgentType)}.\n"
    "Tools: the coder and debug agents may read files and list directories under this "
    "directory (try: read file README.md); writing a file asks you first (y/n)."
)
_ARGUMENTS_SHOWN = 200
_HISTORY_SHOWN = 50
PROMPT = "[bold green]you >[/] "
QUIT = frozenset({"/quit", "/exit"})
_SERVICES_DOWN = "are the services running? (`make up`)"
INPUT_ENDED = "the chat's input ended before the user answered"


class _Quit(Exception):
    """`/quit` typed while an answer streams."""


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
                f"[dim](by {by}; switch {update.switch_count}/10: {escape(update.reason)})[/]"
            )
        elif isinstance(update, TurnStarted):
            self.console.print(f"[dim]… {update.agent.value} is thinking[/]")
        elif isinstance(update, CommandRejected):
            self.console.print(
                f"[red]✗ refused ({update.reason.value}): {escape(update.detail)}[/]"
            )
        elif isinstance(update, TurnCompleted):
            steps = "1 step" if update.steps == 1 else f"{update.steps} steps"
            self.console.print(f"[dim]✓ {update.agent.value} answered ({steps})[/]")
        elif isinstance(update, TurnFailed):
            self.console.print(
                f"[red]✗ turn failed ({escape(update.error_class)}): {escape(update.reason)}[/]"
            )
        elif isinstance(update, TurnCancelled):
            self.console.print(f"[yellow]■ stopped ({update.reason.value})[/]")
        elif isinstance(update, TurnStopped) and update.partial_message_id is not None:
            self.console.print("[dim](the partial answer is kept in the history)[/]")
        elif isinstance(update, ToolCallRequested | ToolApprovalRequested):
            self.tool_call(update)
        elif isinstance(update, ToolResultRecorded):
            mark = "[red]✗[/]" if update.is_error else "[green]✓[/]"
            self.console.print(
                f"{mark} [dim]{escape(update.tool)}: {len(update.content)} characters "
                f"from {escape(update.source)}[/]"
            )
        elif isinstance(update, ToolCallApproved):
            self.console.print(f"[green]✓ {escape(update.tool)} approved[/]")
        elif isinstance(update, ToolCallDenied):
            self.console.print(
                f"[yellow]✗ {escape(update.tool)} denied: {escape(update.reason)}[/]"
            )

    def tool_call(self, call: ToolCallRequested | ToolApprovalRequested | AwaitedToolCall) -> None:
        self.end_stream()
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        if len(arguments) > _ARGUMENTS_SHOWN:
            arguments = arguments[: _ARGUMENTS_SHOWN - 1] + "…"
        where = "here" if call.runs_on == CLIENT else call.runs_on
        self.console.print(
            f"[magenta]🔧 {call.agent.value} calls {escape(call.tool)}[/] "
            f"[dim]{escape(arguments)} (runs {escape(where)})[/]",
            highlight=False,
        )

    def end_stream(self) -> None:
        if self._streaming is not None:
            self.console.print()
            self._streaming = None


async def run_chat(settings: CliSettings, session_id: str | None, title: str) -> None:
    console = Console()
    resume = session_id is not None
    session_id = session_id or new_id("session")
    printer = ChatPrinter(console)
    tools = ClientTools(Path.cwd())
    create: CreateSession | None = None
    if resume:
        await _require_session(settings, session_id)
    else:  # checked before connecting: a wrong option is a usage error wherever Kafka is
        try:
            create = CreateSession(
                id=new_id("cmd"), session_id=session_id, tenant_id=settings.tenant_id, title=title
            )
        except ValidationError as exc:
            raise UsageProblem(f"--title: {exc.errors()[0]['msg']}") from None
    async with SessionClient(settings, session_id) as client:
        if create is not None:
            try:
                await client.submit(create, on_update=printer.show)
            except TimeoutError as exc:
                # Nothing to talk to without a session: one line and exit 1, not a traceback.
                raise CliError(f"{exc}; {_SERVICES_DOWN}") from None
            printer.end_stream()
        console.print(
            f"[bold]session[/] {escape(session_id)} [dim](tenant {escape(settings.tenant_id)})[/]"
        )
        console.print(f"[dim]{HELP}[/]")
        reader = _LineReader(console)
        awaited = await _awaited_calls(settings, session_id) if resume else []
        if awaited:
            # An earlier chat left the turn waiting (it quit, or lost its terminal), or the
            # message came from `send`: the events announcing these calls went by before this
            # chat started, so it reads them from the session; nothing else would answer them
            # before the turn's tool deadline.
            console.print(
                f"[yellow]the running turn waits for {len(awaited)} tool "
                f"{'call' if len(awaited) == 1 else 'calls'} from this chat[/]"
            )
            try:
                await _submit_stoppable(client, None, printer, reader, settings, tools, awaited)
            except _Quit:
                printer.end_stream()
                return
            except (TimeoutError, BrokerUnreachable) as exc:
                printer.end_stream()
                console.print(f"[red]{escape(str(exc))}[/]", highlight=False)
            printer.end_stream()
        while True:
            if not reader.typed_ahead():
                console.print(PROMPT, end="")
            try:
                line = (await reader.next_line()).strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not line:
                continue
            if line in QUIT:
                return
            if line == "/help":
                console.print(HELP)
                continue
            if line == "/history":
                from services.cli.output import Output
                from services.cli.sessions import print_recent

                try:
                    await print_recent(
                        settings, settings.tenant_id, session_id, Output(console), _HISTORY_SHOWN
                    )
                except CliError as exc:  # no such session, MongoDB down: said, the chat goes on
                    console.print(f"[red]{escape(str(exc))}[/]", highlight=False)
                continue
            try:
                command = _command_for(line, settings, session_id)
            except ValidationError as exc:  # e.g. a message over the contract's length
                problem = exc.errors()[0]
                console.print(
                    f"[red]not sent:[/] {escape('.'.join(map(str, problem['loc'])))}: "
                    f"{escape(problem['msg'])}",
                    highlight=False,
                )
                continue
            if command is None:
                console.print(_not_understood(line), highlight=False)
                continue
            if isinstance(command, SwitchAgent) and await _already_with(
                settings, session_id, command.target_agent
            ):
                # session-commands ignores a switch to the current agent (no fact to wait for).
                console.print(f"[dim]already talking to {escape(command.target_agent)}[/]")
                continue
            try:
                outcome = await _submit_stoppable(client, command, printer, reader, settings, tools)
            except _Quit:
                printer.end_stream()
                return
            except TimeoutError as exc:
                printer.end_stream()
                console.print(f"[red]{escape(str(exc))}[/]; {_SERVICES_DOWN}", highlight=False)
                continue
            except BrokerUnreachable as exc:  # the message was not sent: try again later
                printer.end_stream()
                console.print(f"[red]{escape(str(exc))}[/]", highlight=False)
                continue
            printer.end_stream()
            if isinstance(command, CloseSession) and outcome.rejected is None:
                console.print("[dim]session closed[/]")
                return


async def _submit_stoppable(
    client: SessionClient,
    command: SubmitUserMessage | SwitchAgent | CloseSession | CancelTurn | None,
    printer: ChatPrinter,
    reader: "_LineReader",
    settings: CliSettings,
    tools: ClientTools,
    awaited: Sequence[AwaitedToolCall] = (),
) -> TurnOutcome:
    """Submit, and while the turn runs keep reading lines (`/stop` cancels it, y/n answers an
    approval, `/quit` leaves) and answer the client tool calls it makes. The end of the input
    (a pipe, Ctrl-D) lets the turn finish: `echo question | agent-runtime chat` answers.
    Without a command: follow the running turn whose `awaited` calls wait for this chat."""
    desk = ToolDesk(client, printer, tools, settings)
    desk.seed(awaited)

    def on_update(update: SessionEvent | LLMTokenDelta) -> None:
        printer.show(update)
        desk.note(update)

    def asked() -> bool:
        return desk.asking is not None

    turn = asyncio.create_task(
        client.submit(command, on_update=on_update, user_is_asked=asked)
        if command is not None
        else client.follow(awaited[0].turn_id, on_update=on_update, user_is_asked=asked)
    )
    try:
        while not turn.done():
            if reader.ended and desk.asking is not None:
                # No y can come any more (`echo … | agent-runtime chat`): the turn would wait
                # for the answer until its tool deadline. Not a yes, so a denial.
                await desk.deny_unanswered()
            work = asyncio.ensure_future(desk.work.wait())
            waiting: set[asyncio.Future[Any]] = {turn, work}
            # A close ends the chat once applied: a read started for it would outlive the chat,
            # and a thread blocked in a read of a piped stdin (a program driving the chat)
            # aborts the interpreter's shutdown (exit 134, "Fatal Python error"). Nothing
            # typed meanwhile would count: no turn runs that /stop or y/n could answer.
            closing = isinstance(command, CloseSession)
            typed = None if reader.ended or closing else reader.pending()
            if typed is not None:
                waiting.add(typed)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            work.cancel()
            await desk.run_calls()
            desk.ask_next_approval()
            if typed is None or not typed.done() or turn.done():
                continue  # a line typed as the turn ended is the next message, not dropped
            try:
                line = reader.take().strip()
            except EOFError:
                continue  # no more input: wait for the turn's end, then the chat ends
            if line in QUIT:
                # The turn goes on in the session (as after Ctrl-C); this client stops watching.
                raise _Quit
            if desk.asking is not None and line != "/stop":
                await desk.answer_approval(line)
            elif line == "/stop":
                stop = _command_for(line, settings, client.session_id)
                assert stop is not None
                await client.publish(stop)
            elif line:
                printer.console.print("[dim]an answer is streaming: /stop stops it[/]")
    finally:
        # Quitting, or a publish that failed (/stop, a tool result): stop watching the turn,
        # so that the next command is the consumer's only reader.
        if not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn
    return await turn


class CommandOutlet(Protocol):
    """Where the desk's answers go: the session's client (publishes to `commands`)."""

    @property
    def session_id(self) -> str: ...

    async def publish(self, command: Command) -> None: ...


class ToolDesk:
    """The chat's side of a turn's tool calls: runs the client tools it has, asks for approvals
    one at a time, publishes the answers. Each tool call id is handled once."""

    def __init__(
        self, client: CommandOutlet, printer: ChatPrinter, tools: ClientTools, settings: CliSettings
    ) -> None:
        self._client = client
        self._printer = printer
        self._tools = tools
        self._settings = settings
        self._calls: deque[ToolCallRequested | AwaitedToolCall] = deque()
        self._approvals: deque[ToolApprovalRequested | AwaitedToolCall] = deque()
        self._seen: set[str] = set()
        self.asking: ToolApprovalRequested | AwaitedToolCall | None = None
        self.work = asyncio.Event()

    def seed(self, awaited: Iterable[AwaitedToolCall]) -> None:
        """Calls that waited for a client before this chat started (read from the session):
        handled as if their events had just arrived."""
        for call in awaited:
            self._printer.tool_call(call)
            if call.awaiting_approval:
                if self._first(f"ask:{call.tool_call_id}"):
                    self._approvals.append(call)
            elif call.runs_on == CLIENT and self._first(f"run:{call.tool_call_id}"):
                self._calls.append(call)
            self.work.set()

    def note(self, update: SessionEvent | LLMTokenDelta) -> None:
        if isinstance(update, ToolCallRequested) and update.runs_on == CLIENT:
            if self._first(f"run:{update.tool_call_id}"):
                self._calls.append(update)
                self.work.set()
        elif isinstance(update, ToolApprovalRequested) and self._first(
            f"ask:{update.tool_call_id}"
        ):
            self._approvals.append(update)
            self.work.set()

    def _first(self, key: str) -> bool:
        first = key not in self._seen
        self._seen.add(key)
        return first

    async def run_calls(self) -> None:
        self.work.clear()
        while self._calls:
            call = self._calls.popleft()
            result = self._tools.run(call.tool, dict(call.arguments))
            await self._client.publish(
                SubmitToolResult(
                    **self._ids(),
                    turn_id=call.turn_id,
                    tool_call_id=call.tool_call_id,
                    content=result.content,
                    is_error=result.is_error,
                )
            )

    def ask_next_approval(self) -> None:
        if self.asking is not None or not self._approvals:
            return
        self.asking = self._approvals.popleft()
        self._printer.end_stream()
        self._printer.console.print(
            f"[bold magenta]? allow {self.asking.agent.value} to run {escape(self.asking.tool)}?[/] "
            "type y or n and press Enter"
        )

    async def answer_approval(self, line: str) -> None:
        answer = line.strip().lower()
        if answer not in {"y", "yes", "n", "no"}:
            # A typo or a message typed too early must not decide: ask again.
            self._printer.console.print(
                "[bold magenta]type y or n and press Enter[/] (/stop stops the turn)"
            )
            return
        asked, self.asking = self.asking, None
        assert asked is not None
        which = {"turn_id": asked.turn_id, "tool_call_id": asked.tool_call_id}
        if answer in {"y", "yes"}:
            await self._client.publish(ApproveToolCall(**self._ids(), **which, requested_by="chat"))
        else:
            await self._client.publish(
                DenyToolCall(
                    **self._ids(), **which, requested_by="chat", reason="the user said no in chat"
                )
            )
        self.ask_next_approval()

    async def deny_unanswered(self) -> None:
        """Deny every approval asked or queued: the input ended before an answer."""
        while self.asking is not None:
            asked, self.asking = self.asking, None
            self._printer.console.print("[dim](the input ended: no answer)[/]")
            await self._client.publish(
                DenyToolCall(
                    **self._ids(),
                    turn_id=asked.turn_id,
                    tool_call_id=asked.tool_call_id,
                    requested_by="chat",
                    reason=INPUT_ENDED,
                )
            )
            self.ask_next_approval()

    def _ids(self) -> dict[str, str]:
        return {
            "id": new_id("cmd"),
            "session_id": self._client.session_id,
            "tenant_id": self._settings.tenant_id,
        }


class _LineReader:
    """One pending terminal read at a time, kept across turns (a second reader thread would
    race the first for the same keystrokes). It prints no prompt: the chat shows `you >` when
    it waits for a message, not while an answer streams (the read still runs then, for
    `/stop` and y/n)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._pending: asyncio.Future[str] | None = None
        self.ended = False
        """The input ended (EOF): no more reads; a terminal's Ctrl-D is not asked for twice."""

    def pending(self) -> "asyncio.Future[str]":
        if self._pending is None:
            if self.ended:
                self._pending = asyncio.get_running_loop().create_future()
                self._pending.set_exception(EOFError())
            else:
                self._pending = asyncio.ensure_future(_read_line(self._console))
        return self._pending

    def typed_ahead(self) -> bool:
        """A line (or the end of the input) is already there: no prompt for it."""
        return self.ended or (self._pending is not None and self._pending.done())

    def take(self) -> str:
        """The line read (raises EOFError / KeyboardInterrupt as the terminal did)."""
        done, self._pending = self.pending(), None
        try:
            return done.result()
        except EOFError:
            self.ended = True
            raise

    async def next_line(self) -> str:
        await asyncio.wait({self.pending()})
        return self.take()


async def _require_session(settings: CliSettings, session_id: str) -> None:
    """`--session` of a session the tenant does not have: exit 4 as `sessions show` does,
    rather than a chat whose every message is refused. Without MongoDB the chat still
    starts (session-commands decides)."""
    from services.cli.errors import DatabaseUnreachable, NotFound
    from services.cli.sessions import current_agent

    try:
        found = await current_agent(settings, settings.tenant_id, session_id) is not None
    except DatabaseUnreachable:
        return
    if not found:
        raise NotFound(f"no session {session_id} for tenant {settings.tenant_id}")


async def _awaited_calls(settings: CliSettings, session_id: str) -> list[AwaitedToolCall]:
    """The running turn's calls waiting for a client; none when MongoDB cannot say."""
    from services.cli.sessions import awaited_tool_calls

    try:
        return await awaited_tool_calls(settings, settings.tenant_id, session_id)
    except CliError:
        return []


async def _already_with(settings: CliSettings, session_id: str, agent: str) -> bool:
    """The session's current agent is `agent` (read model); unknown (no session, no MongoDB)
    is False: the switch is sent and session-commands decides."""
    from services.cli.sessions import current_agent

    try:
        current = await current_agent(settings, settings.tenant_id, session_id)
    except CliError:
        return False
    return current is not None and current.value == agent


def _not_understood(line: str) -> str:
    """`/switch` with a missing or unknown agent names the agents; anything else is unknown."""
    word = line.split()[0]
    if word == "/switch":
        return f"[red]/switch takes an agent:[/] {', '.join(a.value for a in AgentType)}"
    return f"[red]unknown command[/] {escape(word)}; {HELP}"


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
            line = console.input()
        except BaseException as exc:  # EOFError, KeyboardInterrupt: hand them to the loop
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, line, None)

    threading.Thread(target=read, name="chat-input", daemon=True).start()
    return await answer
