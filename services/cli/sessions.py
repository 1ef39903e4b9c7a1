"""`agent-runtime sessions list / show / history`: session-commands' read model, per tenant.

Every read names the tenant (the `--tenant` option or `AGENT_RUNTIME_TENANT_ID`); another
tenant's session is reported exactly like a missing one."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from contracts.read_model import SessionStatus
from services.cli.errors import CliError, DatabaseUnreachable
from services.cli.settings import CliSettings
from services.session_commands.read_model import Document, SessionReadModel

console = Console()


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
) -> None:
    async with _read_model(settings) as read_model:
        result = await read_model.list_sessions(
            tenant_id, status=status, page=page, page_size=page_size
        )
    table = Table("session", "title", "status", "agent", "messages", "last activity")
    for s in result.sessions:
        table.add_row(
            s.session_id,
            s.title,
            s.status.value,
            s.current_agent.value,
            str(s.message_count),
            s.last_activity_at.isoformat(timespec="seconds"),
        )
    console.print(table)
    pages = max(1, -(-result.total // result.page_size))
    console.print(f"[dim]page {result.page}/{pages}, {result.total} sessions of {tenant_id}")


async def print_session(settings: CliSettings, tenant_id: str, session_id: str) -> None:
    async with _read_model(settings) as read_model:
        view = await read_model.get_session(tenant_id, session_id)
        context = await read_model.agent_context(tenant_id, session_id)
    if view is None or context is None:
        raise CliError(f"no session {session_id} for tenant {tenant_id}")
    console.print_json(view.model_dump_json())
    console.print_json(context.model_dump_json())


async def print_history(
    settings: CliSettings,
    tenant_id: str,
    session_id: str,
    limit: int = 50,
    newest_first: bool = False,
    after_seq: int | None = None,
) -> None:
    async with _read_model(settings) as read_model:
        page = await read_model.history(
            tenant_id, session_id, limit=limit, newest_first=newest_first, cursor=after_seq
        )
    if page is None:
        raise CliError(f"no session {session_id} for tenant {tenant_id}")
    for message in page.messages:
        who = message.agent.value if message.agent else (message.author_name or message.role.value)
        line = Text.assemble((f"{message.seq:>4} ", "dim"), (who, "bold"), ": ", message.content)
        if message.interrupted:
            line.append(" [interrupted]", style="yellow")
        console.print(line)
    if page.next_cursor is not None:
        console.print(f"[dim]more: --after-seq {page.next_cursor}")
