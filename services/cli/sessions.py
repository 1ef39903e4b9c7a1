"""`agent-runtime sessions list / show / history`: the read side of session-commands."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.cli.errors import CliError, DatabaseUnreachable
from services.cli.settings import CliSettings
from services.session_commands.mongo.queries import SessionQueries
from services.session_commands.mongo.session_document import Document

console = Console()


@asynccontextmanager
async def _queries(settings: CliSettings) -> AsyncIterator[SessionQueries]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri, serverSelectionTimeoutMS=5_000
    )
    try:
        yield SessionQueries(client[settings.mongodb_database])
    except PyMongoError as exc:
        raise DatabaseUnreachable(settings.mongodb_uri, exc) from None
    finally:
        await client.close()


async def print_sessions(
    settings: CliSettings, tenant_id: str, active: bool | None, page: int, page_size: int
) -> None:
    async with _queries(settings) as queries:
        result = await queries.list_sessions(
            tenant_id=tenant_id, active=active, page=page, page_size=page_size
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
    console.print(f"[dim]page {result.page}/{result.pages}, {result.total} sessions of {tenant_id}")


async def print_session(settings: CliSettings, session_id: str) -> None:
    async with _queries(settings) as queries:
        state = await queries.get_session(session_id)
    if state is None:
        raise CliError(f"no session {session_id}")
    console.print_json(state.model_dump_json())


async def print_history(
    settings: CliSettings,
    session_id: str,
    limit: int = 50,
    newest_first: bool = False,
    after_seq: int | None = None,
) -> None:
    async with _queries(settings) as queries:
        page = await queries.history(
            session_id, limit=limit, newest_first=newest_first, after_seq=after_seq
        )
    for message in page.messages:
        who = message.agent.value if message.agent else (message.author_name or message.role.value)
        line = Text.assemble((f"{message.seq:>4} ", "dim"), (who, "bold"), ": ", message.content)
        if message.interrupted:
            line.append(" [interrupted]", style="yellow")
        console.print(line)
    if page.next_after_seq is not None:
        console.print(f"[dim]more: --after-seq {page.next_after_seq}")
