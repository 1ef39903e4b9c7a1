"""`agent-runtime`: the command line of Agent Runtime.

Every command reads the same settings as the services (env prefix AGENT_RUNTIME_, `.env`),
so it talks to the same broker, database and topic prefix.
"""

import asyncio
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from contracts.agents import AgentType
from contracts.mid_turn import MidTurnPolicy
from contracts.read_model import SessionStatus
from services.cli.errors import CliError
from services.cli.settings import CliSettings

app = typer.Typer(
    help="Agent Runtime: a Kafka-driven runtime for multi-agent LLM conversations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="Read sessions from the database.", no_args_is_help=True)
audit_app = typer.Typer(help="Follow or query the audit trail.", no_args_is_help=True)
dlq_app = typer.Typer(help="Inspect and replay dead letters.", no_args_is_help=True)
topics_app = typer.Typer(help="Create and describe the project's topics.", no_args_is_help=True)
groups_app = typer.Typer(help="Consumer groups: what an operator scales.", no_args_is_help=True)
for sub, name in (
    (sessions_app, "sessions"),
    (audit_app, "audit"),
    (dlq_app, "dlq"),
    (topics_app, "topics"),
    (groups_app, "groups"),
):
    app.add_typer(sub, name=name)

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def _settings() -> CliSettings:
    try:
        return CliSettings()
    except ValidationError as exc:
        raise CliError(f"invalid settings: {exc}") from None


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


# --- conversation ---------------------------------------------------------------------------


@app.command()
def chat(
    session: Annotated[str | None, typer.Option(help="Resume this session id.")] = None,
    title: Annotated[str, typer.Option(help="Title of a new session.")] = "Chat",
    tenant: Annotated[str | None, typer.Option(help="Tenant id (default: settings).")] = None,
) -> None:
    """Create or resume a session and talk to it; tokens stream live."""
    from services.cli.chat import run_chat

    settings = _settings()
    if tenant:
        settings = settings.model_copy(update={"tenant_id": tenant})
    _run(run_chat(settings, session, title))


@app.command()
def demo() -> None:
    """A scripted conversation through the real pipeline; exit 0 when every agent took part."""
    from services.cli.demo import run_demo

    _run(run_demo(_settings(), console))


@app.command()
def send(
    json_file: Annotated[
        str | None, typer.Option("--json", help="A command body as JSON; '-' reads stdin.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Or build one: create | message | switch | update | close | reopen | cancel | erase."
        ),
    ] = None,
    session: Annotated[str | None, typer.Option(help="Session id (with --kind).")] = None,
    content: Annotated[str | None, typer.Option(help="Message content (--kind message).")] = None,
    agent: Annotated[AgentType | None, typer.Option(help="Target agent (--kind switch).")] = None,
    title: Annotated[str | None, typer.Option(help="Title (create/update).")] = None,
    reason: Annotated[str | None, typer.Option(help="Reason (switch/close/cancel/erase).")] = None,
    turn: Annotated[
        str | None, typer.Option(help="Turn id (--kind cancel; the running turn if absent).")
    ] = None,
    policy: Annotated[
        MidTurnPolicy | None,
        typer.Option(help="Mid-turn policy (create/update): queue | reject | interrupt | replace."),
    ] = None,
) -> None:
    """Publish a command to the commands topic, validated with the contracts."""
    from services.cli.send import build_command, publish_command, read_body

    settings = _settings()
    if json_file is not None:
        body = read_body(json_file)
    elif kind is not None and session is not None:
        body = _flags_body(kind, session, content, agent, title, reason)
        if kind == "cancel" and turn is not None:
            body["turn_id"] = turn
        if kind in {"create", "update"} and policy is not None:
            body["mid_turn_policy"] = policy.value
    else:
        raise CliError("give --json FILE, or --kind with --session")
    command = build_command(body, settings)
    _run(publish_command(settings, command))
    console.print(f"published {command.type} {command.id} for session {command.session_id}")  # type: ignore[attr-defined]


def _flags_body(
    kind: str,
    session: str,
    content: str | None,
    agent: AgentType | None,
    title: str | None,
    reason: str | None,
) -> dict[str, Any]:
    import uuid

    types = {
        "create": "session.create.v1",
        "message": "session.submit_user_message.v1",
        "switch": "session.switch_agent.v1",
        "update": "session.update.v1",
        "close": "session.close.v1",
        "reopen": "session.reopen.v1",
        "cancel": "session.cancel_turn.v1",
        "erase": "session.erase.v1",
    }
    if kind not in types:
        raise CliError(f"--kind must be one of {', '.join(types)}")
    body: dict[str, Any] = {"type": types[kind], "session_id": session}
    if kind == "message":
        body |= {"content": content or "", "message_id": f"msg-{uuid.uuid4()}"}
    if kind == "switch":
        body["target_agent"] = agent.value if agent else None
    if title is not None:
        body["title"] = title
    if reason is not None and kind in {"switch", "close", "cancel", "erase"}:
        body["reason"] = reason
    return body


# --- sessions ---------------------------------------------------------------------------------


@sessions_app.command("list")
def sessions_list(
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
    status: Annotated[SessionStatus | None, typer.Option(help="Only this status.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Sessions of a tenant, newest activity first, paged."""
    from services.cli.sessions import print_sessions

    settings = _settings()
    _run(print_sessions(settings, tenant or settings.tenant_id, status, page, page_size))


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
) -> None:
    """One session of the tenant: status, agent context, switch history, turn state."""
    from services.cli.sessions import print_session

    settings = _settings()
    _run(print_session(settings, tenant or settings.tenant_id, session_id))


@sessions_app.command("history")
def sessions_history(
    session_id: str,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    after_seq: Annotated[int | None, typer.Option(help="Page: messages after this seq.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first/--oldest-first")] = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
) -> None:
    """The session's messages (of the tenant), paged by sequence number."""
    from services.cli.sessions import print_history

    settings = _settings()
    _run(
        print_history(
            settings, tenant or settings.tenant_id, session_id, limit, newest_first, after_seq
        )
    )


# --- audit ------------------------------------------------------------------------------------


@audit_app.command("tail")
def audit_tail(
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    fact_type: Annotated[str | None, typer.Option("--type", help="Only this fact type.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    limit: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
) -> None:
    """Follow the audit topic."""
    from services.cli.audit import tail

    _run(tail(_settings(), session, tenant, fact_type, follow, limit))


@audit_app.command("query")
def audit_query(
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    fact_type: Annotated[str | None, typer.Option("--type", help="Only this fact type.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time, exclusive.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Query the retained audit log."""
    from services.cli.audit import query

    _run(query(_settings(), session, tenant, fact_type, since, until, limit))


# --- operators --------------------------------------------------------------------------------


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="Newest N per partition.")] = 50,
) -> None:
    """Dead letters with origin, reason and error."""
    from services.cli.operations import print_dead_letters, read_dead_letters

    print_dead_letters(_run(read_dead_letters(_settings(), limit)), console)


@dlq_app.command("replay")
def dlq_replay(letter_id: str) -> None:
    """Re-publish a dead letter to its origin topic, if its record now validates."""
    from services.cli.operations import replay_dead_letter

    topic = _run(replay_dead_letter(_settings(), letter_id))
    console.print(f"replayed {letter_id} to {topic}")


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Default: the catalogue's (12).")] = None,
) -> None:
    """Create every topic of the catalogue (idempotent); refuses to change partition counts."""
    from services.cli.topics import create_topics

    _run(create_topics(_settings(), partitions, console))


@topics_app.command("describe")
def topics_describe() -> None:
    """Partitions, configs and end offsets of every catalogue topic."""
    from services.cli.topics import describe_topics

    _run(describe_topics(_settings(), console))


@groups_app.command("lag")
def groups_lag(
    group: Annotated[str | None, typer.Option(help="One group; default: all.")] = None,
) -> None:
    """Consumer lag per group and partition: the figure to scale a consumer group on."""
    from services.cli.operations import consumer_lag, print_lag

    rows = _run(consumer_lag(_settings(), group))
    if not rows:
        console.print("no committed offsets yet")
    print_lag(rows, console)


# --- the local stack ------------------------------------------------------------------------


@app.command()
def up(
    run_dir: Annotated[Path, typer.Option(help="Pid files and logs.")] = Path(".run"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 120.0,
) -> None:
    """Start the four services in the background (pid files, logs in files)."""
    from services.cli.local_stack import up as stack_up

    _run(stack_up(run_dir, timeout, console))


@app.command()
def down(run_dir: Annotated[Path, typer.Option(help="Pid files and logs.")] = Path(".run")) -> None:
    """Stop exactly the services `up` started (SIGTERM: they drain and commit)."""
    from services.cli.local_stack import down as stack_down

    stack_down(run_dir, console)


@app.command()
def run(run_dir: Annotated[Path, typer.Option(help="Pid files and logs.")] = Path(".run")) -> None:
    """Start the services with prefixed logs, open the chat; on exit stop the services."""
    from services.cli.local_stack import run as stack_run

    stack_run(run_dir, console)


def main() -> None:
    # Client libraries log connection retries as errors; the CLI reports failures itself, once.
    logging.basicConfig(level=logging.CRITICAL)
    try:
        app()
    except CliError as exc:
        errors.print(f"[red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
