"""`agent-runtime sessions list / show / history`: session-commands' read model, per tenant.

Every read names the tenant (the `--tenant` option or `AGENT_RUNTIME_TENANT_ID`); another
tenant's session is reported exactly like a missing one (exit code 4, not found). With
`--json` each prints the read model's document: `SessionPage`, `{"session": SessionView,
"agent_context": AgentContext}`, `HistoryPage` (contracts/read_model.py)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from rich.markup import escape
from rich.text import Text

from contracts.agents import AgentType
from contracts.read_model import AwaitedToolCall, HistoryMessage, SessionStatus
from services.cli.errors import DatabaseUnreachable, NotFound
from services.cli.output import Output
from services.cli.settings import CliSettings
from services.session_commands.read_model import Document, SessionReadModel


@asynccontextmanager
async def _read_model(settings: CliSettings) -> AsyncIterator[SessionReadModel]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri, serverSelectionTimeoutMS=5_000
    )
    try:
        yield SessionReadModel(client[settings.mongodb_database])
    except PyMongoError as exc:
        raise DatabaseUnreachable(settings.mongodb_uri, exc) from None
    finally:
        await client.close()


async def print_sessions(
    settings: CliSettings,
    tenant_id: str,
    status: SessionStatus | None,
    page: int,
    page_size: int,
    out: Output,
) -> None:
    async with _read_model(settings) as read_model:
        result = await read_model.list_sessions(
            tenant_id, status=status, page=page, page_size=page_size
        )
    if out.as_json:
        out.document(result)
        return
    out.table(
        ("session", "title", "status", "agent", "messages", "last activity"),
        (
            (
                s.session_id,
                s.title,
                s.status.value,
                s.current_agent.value,
                s.message_count,
                s.last_activity_at.isoformat(timespec="seconds"),
            )
            for s in result.sessions
        ),
    )
    pages = max(1, -(-result.total // result.page_size))
    out.note(f"[dim]page {result.page}/{pages}, {result.total} sessions of {escape(tenant_id)}")


async def print_session(
    settings: CliSettings, tenant_id: str, session_id: str, out: Output
) -> None:
    async with _read_model(settings) as read_model:
        view = await read_model.get_session(tenant_id, session_id)
        context = await read_model.agent_context(tenant_id, session_id)
    if view is None or context is None:
        raise NotFound(f"no session {session_id} for tenant {tenant_id}")
    if out.for_people:
        out.console.print_json(view.model_dump_json())
        out.console.print_json(context.model_dump_json())
    else:  # one document for scripts, piped or --json
        out.document({"session": view, "agent_context": context})


async def current_agent(settings: CliSettings, tenant_id: str, session_id: str) -> AgentType | None:
    """The agent that answers the session's next message; None for no session (of the tenant)."""
    async with _read_model(settings) as read_model:
        view = await read_model.get_session(tenant_id, session_id)
    return None if view is None else view.current_agent


async def awaited_tool_calls(
    settings: CliSettings, tenant_id: str, session_id: str
) -> list[AwaitedToolCall]:
    """The running turn's calls that wait for a client (approvals, client tools)."""
    async with _read_model(settings) as read_model:
        return await read_model.awaited_tool_calls(tenant_id, session_id)


async def print_history(
    settings: CliSettings,
    tenant_id: str,
    session_id: str,
    out: Output,
    limit: int = 50,
    newest_first: bool = False,
    after_seq: int | None = None,
) -> None:
    async with _read_model(settings) as read_model:
        page = await read_model.history(
            tenant_id, session_id, limit=limit, newest_first=newest_first, cursor=after_seq
        )
    if page is None:
        raise NotFound(f"no session {session_id} for tenant {tenant_id}")
    if out.as_json:
        out.document(page)
        return
    _print_messages(page.messages, out)
    if page.next_cursor is not None:
        out.note(f"[dim]more: --after-seq {page.next_cursor}")


async def print_recent(
    settings: CliSettings, tenant_id: str, session_id: str, out: Output, limit: int
) -> None:
    """The session's last `limit` messages, oldest first: the chat's `/history`, where the
    conversation's end is what a person looks for (its first page stopped at seq `limit`)."""
    async with _read_model(settings) as read_model:
        page = await read_model.history(tenant_id, session_id, limit=limit, newest_first=True)
    if page is None:
        raise NotFound(f"no session {session_id} for tenant {tenant_id}")
    _print_messages(list(reversed(page.messages)), out)
    if page.next_cursor is not None:
        out.note(
            f"[dim](the last {limit} messages; `agent-runtime sessions history "
            f"{escape(session_id)}` pages through them all)"
        )


def _print_messages(messages: list[HistoryMessage], out: Output) -> None:
    for message in messages:
        who = message.agent.value if message.agent else (message.author_name or message.role.value)
        if out.for_people:
            line = Text.assemble(
                (f"{message.seq:>4} ", "dim"), (who, "bold"), ": ", message.content
            )
            if message.interrupted:
                line.append(" [interrupted]", style="yellow")
            out.line(line)
        else:
            out.row(
                (message.seq, who, message.content, "interrupted" if message.interrupted else "")
            )
