"""`agent-runtime demo`: a scripted conversation through the real pipeline.

It exercises every agent and at least one switch, prints the transcript as it streams, and
fails (exit 1) when a turn fails, is refused, times out, or an agent was never reached.
"""

from dataclasses import dataclass, field

from rich.console import Console

from contracts.agents import AgentType
from contracts.commands import Command, CreateSession, SubmitUserMessage, SwitchAgent
from contracts.session_events import AgentSwitched, AssistantMessageAppended, TurnStarted
from services.cli.chat import ChatPrinter
from services.cli.errors import CliError
from services.cli.session_client import SessionClient, TurnOutcome, new_id
from services.cli.settings import CliSettings

SCRIPT: tuple[str | AgentType, ...] = (
    "Hello! What can you help me with?",
    "Implement a Python function that parses ISO 8601 dates and add tests for it.",
    "The service crashes with a KeyError traceback when the cache is empty. Why does it fail?",
    "How should we design the architecture so the system scales to thousands of tenants?",
    AgentType.ORCHESTRATOR,
    "Thanks, that is all for today.",
)
"""User messages, and (as an AgentType) an explicit user switch."""


@dataclass
class DemoReport:
    session_id: str
    agents_seen: set[AgentType] = field(default_factory=set)
    switches: int = 0
    turns_completed: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self, outcome: TurnOutcome) -> None:
        for update in outcome.updates:
            if isinstance(update, TurnStarted | AssistantMessageAppended):
                self.agents_seen.add(update.agent)
            elif isinstance(update, AgentSwitched):
                self.agents_seen.add(update.to_agent)
                self.switches += 1
        if outcome.rejected is not None:
            self.problems.append(f"{outcome.command_id} refused: {outcome.rejected.reason.value}")
        if outcome.failed is not None:
            self.problems.append(f"turn failed: {outcome.failed.error_class}")
        if outcome.completed is not None:
            self.turns_completed += 1

    def verdict(self) -> list[str]:
        missing = set(AgentType) - self.agents_seen
        problems = list(self.problems)
        if missing:
            problems.append(f"agents never reached: {', '.join(sorted(a.value for a in missing))}")
        if self.switches == 0:
            problems.append("no agent switch happened")
        return problems


async def run_demo(settings: CliSettings, console: Console | None = None) -> DemoReport:
    console = console or Console()
    printer = ChatPrinter(console)
    report = DemoReport(session_id=new_id("demo"))
    ids = {"session_id": report.session_id, "tenant_id": settings.tenant_id}
    async with SessionClient(settings, report.session_id) as client:
        console.rule(f"demo session {report.session_id}")
        create = CreateSession(id=new_id("cmd"), **ids, title="Agent Runtime demo")
        report.record(await _submitted(client, create, printer))
        for step in SCRIPT:
            if isinstance(step, AgentType):
                console.print(f"[bold green]you >[/] /switch {step.value}")
                command: SwitchAgent | SubmitUserMessage = SwitchAgent(
                    id=new_id("cmd"), **ids, target_agent=step, reason="demo: back to routing"
                )
            else:
                console.print(f"[bold green]you >[/] {step}")
                command = SubmitUserMessage(
                    id=new_id("cmd"), **ids, message_id=new_id("msg"), content=step
                )
            outcome = await _submitted(client, command, printer)
            printer.end_stream()
            report.record(outcome)
    problems = report.verdict()
    console.rule("result")
    console.print(
        f"turns completed: {report.turns_completed}, switches: {report.switches}, "
        f"agents: {', '.join(sorted(a.value for a in report.agents_seen))}"
    )
    if problems:
        raise CliError("demo failed: " + "; ".join(problems))
    console.print("[bold green]demo passed[/]")
    return report


async def _submitted(client: SessionClient, command: Command, printer: ChatPrinter) -> TurnOutcome:
    """The command's outcome; a reply timeout (the create's too) ends the demo in one line."""
    try:
        return await client.submit(command, on_update=printer.show)
    except TimeoutError as exc:
        raise CliError(f"{exc}; are the services running? (`make up`)") from None
