"""`agent-runtime`: the command line of Agent Runtime.

Every command reads the same settings as the services (env prefix AGENT_RUNTIME_, `.env`),
so it talks to the same broker, database and topic prefix.
"""

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.markup import escape

from contracts.agents import AgentType
from contracts.audit import AuditOutcome
from contracts.base import Id
from contracts.dead_letters import DeadLetterReason
from contracts.mid_turn import MidTurnPolicy
from contracts.read_model import SessionStatus
from services.cli.errors import CliError, ExitCode, NotFound, UsageProblem
from services.cli.output import Output
from services.cli.settings import CliSettings, cli_settings

if TYPE_CHECKING:
    from services.cli.dead_letters import DeadLetterFilter

# Boxed, coloured help and usage errors on a terminal; click's plain text when piped.
_MARKUP: Any = "rich" if sys.stdout.isatty() else None


def _typer(help_text: str, **options: Any) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=_MARKUP, **options)


app = _typer(
    "Agent Runtime: a Kafka-driven runtime for multi-agent LLM conversations.",
    pretty_exceptions_enable=False,
)
sessions_app = _typer("Read sessions from the database.")
audit_app = _typer("Follow or query the audit trail.")
dlq_app = _typer("Inspect and replay dead letters.")
topics_app = _typer("Create and describe the project's topics.")
groups_app = _typer("Consumer groups: what an operator scales.")
for sub, name in (
    (sessions_app, "sessions"),
    (audit_app, "audit"),
    (dlq_app, "dlq"),
    (topics_app, "topics"),
    (groups_app, "groups"),
):
    app.add_typer(sub, name=name)

console = Console()
# Piped, a line is a line: rich folds prints at 80 columns otherwise, splitting an id that a
# script reads (`send`'s command id, `topics create`'s changes) over two lines.
console.soft_wrap = not console.is_terminal
errors = Console(stderr=True)
T = TypeVar("T")

JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json", help="Print JSON (NDJSON for streams) instead of a table or tab-separated lines."
    ),
]
Since = Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive (no zone: UTC).")]
Until = Annotated[str | None, typer.Option(help="ISO 8601 time, exclusive (no zone: UTC).")]
OriginTopics = Annotated[
    list[str] | None,
    typer.Option(
        "--topic", help="Origin topic: a catalogue name (commands) or a full name; repeatable."
    ),
]
Reasons = Annotated[
    list[DeadLetterReason] | None, typer.Option("--reason", help="Dead-letter reason; repeatable.")
]
Services = Annotated[
    list[str] | None,
    typer.Option("--service", help="The service that dead-lettered it; repeatable."),
]


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"agent-runtime {package_version('agent-runtime')}")
        raise typer.Exit()


@app.callback()
def global_options(
    bootstrap_server: Annotated[
        str | None,
        typer.Option(
            "-b",
            "--bootstrap-server",
            help="Kafka brokers, host:port[,host:port]; overrides "
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS.",
        ),
    ] = None,
    topic_prefix: Annotated[
        str | None,
        typer.Option(help="Prefix of the topic names; overrides AGENT_RUNTIME_TOPIC_PREFIX."),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit."
        ),
    ] = False,
) -> None:
    """Exit codes: 0 ok, 1 failure, 2 usage, 3 Kafka/MongoDB unreachable, 4 not found,
    5 partial failure, 6 lag above --max-lag (docs/operations.md#exit-codes)."""
    # Given but empty (`-b "$KAFKA"` with KAFKA unset): the settings ignore an empty variable,
    # so the command ran against the default broker or the default deployment's topics
    # (`--topic-prefix "$P" dlq replay --all` replayed `agent-runtime.`'s dead letters).
    for option, given in (
        ("-b/--bootstrap-server", bootstrap_server),
        ("--topic-prefix", topic_prefix),
    ):
        if given is not None and not given.strip():
            raise UsageProblem(f"{option} is empty")
    # Written where the settings are read from, so every command and the services that
    # `up`/`run` start see the same broker and prefix; nothing else has to pass them along.
    if bootstrap_server is not None:
        os.environ["AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap_server
    if topic_prefix is not None:
        os.environ["AGENT_RUNTIME_TOPIC_PREFIX"] = topic_prefix


def _settings() -> CliSettings:
    return cli_settings()


def _checked_id(option: str, value: str) -> str:
    """An id option as the contracts take it, else a usage error naming the option."""
    try:
        return TypeAdapter(Id).validate_python(value)
    except ValidationError as exc:
        raise UsageProblem(f"{option}: {exc.errors()[0]['msg']}") from None


def _tenant_of(settings: CliSettings, tenant: str | None) -> str:
    """`--tenant`, else the settings' tenant. Given but empty (`--tenant "$T"` with T unset)
    is a usage error: it read the settings' tenant's sessions as if none had been named."""
    return settings.tenant_id if tenant is None else _checked_id("--tenant", tenant)


def _out(as_json: bool) -> Output:
    return Output(console, as_json=as_json)


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
    if session is not None:
        _checked_id("--session", session)
    # model_copy does not validate: the tenant is checked as the commands require it.
    settings = settings.model_copy(update={"tenant_id": _tenant_of(settings, tenant)})
    _run(run_chat(settings, session, title))


@app.command()
def demo() -> None:
    """A scripted conversation through the real pipeline; exit 0 when every agent took part."""
    from services.cli.demo import run_demo

    _run(run_demo(_settings(), console))


@app.command()
def send(
    json_file: Annotated[
        str | None,
        # A path, not the JSON itself (README: `send --json FILE`): inline JSON was read as a
        # file name and refused as unreadable.
        typer.Option(
            "--json", metavar="FILE", help="A file holding the command body (JSON); '-': stdin."
        ),
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
        raise UsageProblem("give --json FILE, or --kind with --session")
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
        raise UsageProblem(f"--kind must be one of {', '.join(types)}")
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
    as_json: JsonFlag = False,
) -> None:
    """Sessions of a tenant, newest activity first, paged."""
    from services.cli.sessions import print_sessions

    settings = _settings()
    _run(
        print_sessions(
            settings, _tenant_of(settings, tenant), status, page, page_size, _out(as_json)
        )
    )


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """One session of the tenant: status, agent context, switch history, turn state."""
    from services.cli.sessions import print_session

    settings = _settings()
    _run(print_session(settings, _tenant_of(settings, tenant), session_id, _out(as_json)))


@sessions_app.command("history")
def sessions_history(
    session_id: str,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    after_seq: Annotated[int | None, typer.Option(help="Page: messages after this seq.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first/--oldest-first")] = False,
    tenant: Annotated[str | None, typer.Option(help="Tenant (default: settings).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The session's messages (of the tenant), paged by sequence number."""
    from services.cli.sessions import print_history

    settings = _settings()
    _run(
        print_history(
            settings,
            _tenant_of(settings, tenant),
            session_id,
            _out(as_json),
            limit,
            newest_first,
            after_seq,
        )
    )


# --- audit ------------------------------------------------------------------------------------


@audit_app.command("tail")
def audit_tail(
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    fact_type: Annotated[str | None, typer.Option("--type", help="Only this fact type.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    # At least 1, like query's: 0 (or less) printed nothing with --no-follow and, following,
    # waited for a first record it then printed anyway.
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many records.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Follow the audit topic (--json: NDJSON, one record per line, flushed as it comes)."""
    from services.cli.audit import tail

    _run(tail(_settings(), session, tenant, fact_type, follow, limit, as_json=as_json))


@audit_app.command("query")
def audit_query(
    session: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    fact_type: Annotated[str | None, typer.Option("--type", help="Only this fact type.")] = None,
    outcome: Annotated[
        AuditOutcome | None, typer.Option(help="Only records with this outcome.")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    after: Annotated[str | None, typer.Option(help="Page: the cursor a page ended with.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Query the retained audit log."""
    from services.cli.audit import query

    settings = _settings()
    _run(
        query(
            settings,
            session,
            tenant,
            fact_type,
            since,
            until,
            limit,
            outcome=outcome,
            after=after,
            collection=settings.audit_log_collection,
            as_json=as_json,
        )
    )


# --- operators --------------------------------------------------------------------------------


def _letter_filter(
    settings: CliSettings,
    ids: list[str] | None,
    topics: list[str] | None,
    reasons: list[DeadLetterReason] | None,
    services: list[str] | None,
    since: str | None,
    until: str | None,
) -> "DeadLetterFilter":
    from services.cli.dead_letters import DeadLetterFilter, origin_topic_names
    from services.cli.time_options import parse_time

    return DeadLetterFilter(
        ids=frozenset(ids or ()),
        origin_topics=origin_topic_names(settings, topics or ()),
        reasons=frozenset(reasons or ()),
        services=frozenset(services or ()),
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )


@dlq_app.command("list")
def dlq_list(
    topic: OriginTopics = None,
    reason: Reasons = None,
    service: Services = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, help="Read the newest N per partition.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Dead letters with origin, reason and error, oldest first (--json: NDJSON)."""
    from services.cli.dead_letter_views import print_letters
    from services.cli.dead_letters import read_dead_letters

    settings = _settings()
    wanted = _letter_filter(settings, None, topic, reason, service, since, until)
    print_letters(_run(read_dead_letters(settings, limit, wanted)), _out(as_json))


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letter ids; or choose them by filter.")
    ] = None,
    topic: OriginTopics = None,
    reason: Reasons = None,
    service: Services = None,
    since: Since = None,
    until: Until = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every dead letter read: no id or filter needed.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Read the newest N per partition.")] = 10_000,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be replayed; publish nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Re-publish dead letters to their origin topics, each only if its record now validates.

    Exit 0 when every chosen letter was replayed (with --dry-run: would be), 1 when none was,
    5 (partial failure) when some were and others failed or were skipped, 4 when an id given
    is not among the dead letters read.
    """
    from services.cli.dead_letter_views import replay_exit_code, replay_with_progress
    from services.cli.dead_letters import read_dead_letters

    settings = _settings()
    wanted = _letter_filter(settings, letter_ids, topic, reason, service, since, until)
    if wanted.selects_all and not every:
        raise UsageProblem(
            "name dead letter ids, or filter (--topic, --reason, --service, --since, --until), "
            "or pass --all"
        )
    letters = _run(read_dead_letters(settings, limit, wanted))
    missing = wanted.ids - {stored.letter.id for stored in letters}
    if missing:
        raise NotFound(
            f"no dead letter {', '.join(sorted(missing))} among the newest {limit} per "
            "partition (matching the filters)"
        )
    summary = _run(replay_with_progress(settings, letters, dry_run=dry_run, out=_out(as_json)))
    code = replay_exit_code(summary)
    if code is not ExitCode.OK:
        raise typer.Exit(code)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Default: the catalogue's (12).")
    ] = None,
) -> None:
    """Create every topic of the catalogue (idempotent); refuses to change partition counts."""
    from services.cli.topics import create_topics

    _run(create_topics(_settings(), partitions, console))


@topics_app.command("describe")
def topics_describe(as_json: JsonFlag = False) -> None:
    """Partitions, configs and end offsets of every catalogue topic."""
    from services.cli.topics import describe_topics

    _run(describe_topics(_settings(), _out(as_json)))


@groups_app.command("lag")
def groups_lag(
    group: Annotated[str | None, typer.Option(help="One group; default: all.")] = None,
    max_lag: Annotated[
        int | None,
        typer.Option(min=0, help="Exit 6 when some partition's lag is above N (for scripts)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Lag per group and partition of the topic prefix's topics, with the member holding it
    (client id, host, instance): the figure to scale a consumer group on."""
    from services.cli.consumer_groups import above, consumer_lag, print_lag

    out = _out(as_json)
    rows = _run(consumer_lag(_settings(), group))
    if not rows:
        out.note("no committed offsets or members on these topics yet")
    print_lag(rows, out)
    if max_lag is not None and (lagging := above(rows, max_lag)):
        worst = max(lagging, key=lambda row: row.lag or 0)
        errors.print(
            f"lag above {max_lag} on {len(lagging)} partitions "
            f"(worst: {worst.group} {worst.topic}[{worst.partition}] {worst.lag})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(ExitCode.LAG_ABOVE_LIMIT)


# --- the local stack ------------------------------------------------------------------------


@app.command()
def up(
    run_dir: Annotated[Path, typer.Option(help="Pid files and logs.")] = Path(".run"),
    timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 120.0,
) -> None:
    """Start the five consumers and the HTTP gateway in the background (pid files, logs in files)."""
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
        # The message may quote what the user typed (an id): never read as markup.
        errors.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
