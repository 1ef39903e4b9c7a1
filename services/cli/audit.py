"""`agent-runtime audit tail` and `agent-runtime audit query`: the logic, typed and printable.

The typer commands (services/cli/main.py) only parse options and call these. The query model
(`AuditQuery`, `AuditPage`, the log's `query`) is the audit service's (services/audit/
audit_log.py); only the presentation lives here, so no arrow runs from audit back to the CLI. Both read the
same settings as the services (env prefix AGENT_RUNTIME_), so they see the same topics and
database.

- `tail` reads the audit topic itself, what pipelines see: no consumer group (it commits
  nothing and disturbs no one), filtered client-side; a session filter reads only the
  session's partition.
- `query` reads the retained audit log in MongoDB, paged by a cursor.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from pymongo import AsyncMongoClient
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from contracts.audit import AuditOutcome, AuditRecord
from contracts.codec import DecodeError, decode
from contracts.topics import TopicName
from services.audit.audit_log import COLLECTION, AuditPage, AuditQuery, InvalidCursor, MongoAuditLog
from services.cli import kafka_clients
from services.cli.errors import DatabaseUnreachable, NotFound, UsageProblem
from services.cli.output import Output
from services.cli.time_options import parse_time
from services.runtime.errors import RetryableError
from services.runtime.settings import RuntimeSettings

_TIMEOUT_MS: Final = 10_000
_POLL_MS: Final = 500
_OUTCOME_STYLE: Final = {
    AuditOutcome.ACCEPTED: "green",
    AuditOutcome.SUCCEEDED: "bold green",
    AuditOutcome.RECORDED: "cyan",
    AuditOutcome.REJECTED: "yellow",
    AuditOutcome.FAILED: "bold red",
    AuditOutcome.DEAD_LETTERED: "bold magenta",
}


def _matches(
    record: AuditRecord, session_id: str | None, tenant_id: str | None, fact_type: str | None
) -> bool:
    return (
        (session_id is None or record.session_id == session_id)
        and (tenant_id is None or record.tenant_id == tenant_id)
        and (fact_type is None or record.fact_type == fact_type)
    )


def record_line(record: AuditRecord) -> Text:
    """One audit record on one line: when, who, what, which, outcome."""
    line = Text()
    line.append(record.fact_time.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], style="dim")
    line.append(f"  {record.session_id}", style="bold")
    line.append(f"  {record.tenant_id or '-'}", style="blue")
    line.append(f"  {record.fact_type}")
    line.append(f"  {record.outcome.value}", style=_OUTCOME_STYLE[record.outcome])
    if record.turn_id:
        line.append(f"  turn={record.turn_id}", style="dim")
    line.append(f"  by {record.source_service}", style="dim")
    if record.trace_id:
        line.append(f"  trace={record.trace_id[:16]}", style="dim")
    return line


async def tail(
    settings: RuntimeSettings,
    session_id: str | None = None,
    tenant_id: str | None = None,
    fact_type: str | None = None,
    follow: bool = True,
    limit: int | None = None,
    *,
    from_beginning: bool = False,
    console: Console | None = None,
    as_json: bool = False,
    positioned: asyncio.Event | None = None,
) -> int:
    """Print audit records matching the filters; returns how many were printed.

    follow=True: records published from now on (from the topic's start with
    `from_beginning`), until `limit` were printed or the command is interrupted.
    follow=False: what the topic holds now, oldest first by record time; the newest `limit`
    matches when limit is given.
    `positioned` is set once the start position is fixed: anything published later is seen.
    """
    out = Output(console or Console(), as_json=as_json)
    topic = settings.topics.name(TopicName.AUDIT)
    partitions = await _partitions(settings, topic, session_id)
    async with kafka_clients.consumer(settings) as consumer:
        consumer.assign(partitions)
        if follow and not from_beginning:
            await consumer.seek_to_end(*partitions)
            ends = None
        else:
            await consumer.seek_to_beginning(*partitions)
            ends = None if follow else await consumer.end_offsets(partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the lazy seek now
        if positioned is not None:
            positioned.set()
        matches = _read(consumer, partitions, ends, session_id, tenant_id, fact_type, out)
        if follow:
            printed = 0
            async for record in matches:
                _print_record(out, record)
                printed += 1
                if limit is not None and printed >= limit:
                    break
            return printed
        # Oldest first by record time across partitions (read partition by partition, the
        # last N read were the end of whichever partition came last, not the newest N).
        found = sorted([record async for record in matches], key=lambda r: r.occurred_at)
        shown = found if limit is None else found[-limit:] if limit > 0 else []
        for record in shown:
            _print_record(out, record)
        return len(shown)


def _print_record(out: Output, record: AuditRecord) -> None:
    """NDJSON with --json, a styled line on a terminal, tab-separated fields when piped."""
    if out.as_json:
        out.json_line(record)
    elif out.for_people:
        out.line(record_line(record))
    else:
        out.row(
            (
                record.fact_time.isoformat(timespec="milliseconds"),
                record.session_id,
                record.tenant_id,
                record.fact_type,
                record.outcome.value,
                record.turn_id,
                record.source_service,
                record.trace_id,
                record.id,
            )
        )


async def _partitions(
    settings: RuntimeSettings, topic: str, session_id: str | None
) -> list[TopicPartition]:
    available = await kafka_clients.partitions_of(settings, topic)
    if not available:
        raise NotFound(f"the audit topic {topic!r} does not exist (is the prefix right?)")
    if session_id is not None:
        # Keyed by session id with Kafka's default (murmur2) partitioner: one partition to read.
        chosen = DefaultPartitioner()(session_id.encode(), available, available)
        return [TopicPartition(topic, chosen)]
    return [TopicPartition(topic, p) for p in available]


async def _read(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int] | None,
    session_id: str | None,
    tenant_id: str | None,
    fact_type: str | None,
    out: Output,
) -> AsyncIterator[AuditRecord]:
    """Matching records in arrival order; stops at `ends` when given, else never."""
    remaining = set(partitions)
    while True:
        if ends is not None:
            # Done with a partition once its position reaches the end, not once a record at
            # end - 1 was read: a partition whose records retention (or delete-records) removed
            # has no record to read, and the tail waited for one for ever.
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if not remaining:
                return
        batches = await consumer.getmany(*remaining, timeout_ms=_POLL_MS)
        for tp, messages in batches.items():
            for message in messages:
                if ends is not None and message.offset >= ends[tp]:
                    break  # published after the tail started: --no-follow shows what was there
                try:
                    record = decode(message.value, message.headers or (), topic=TopicName.AUDIT)
                except DecodeError as exc:
                    out.note(
                        f"[red]{tp.partition}@{message.offset}: not an audit record: {escape(str(exc))}"
                    )
                    continue
                assert isinstance(record.message, AuditRecord)
                if _matches(record.message, session_id, tenant_id, fact_type):
                    yield record.message
        await asyncio.sleep(0)


async def query(
    settings: RuntimeSettings,
    session_id: str | None = None,
    tenant_id: str | None = None,
    fact_type: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int = 50,
    *,
    outcome: AuditOutcome | None = None,
    after: str | None = None,
    collection: str = COLLECTION,
    console: Console | None = None,
    as_json: bool = False,
) -> AuditPage:
    """Print one page of the audit log (oldest first) and how to get the next one."""
    out = Output(console or Console(), as_json=as_json)
    request = AuditQuery(
        session_id=session_id,
        tenant_id=tenant_id,
        fact_type=fact_type,
        outcome=outcome,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        limit=limit,
        after=after,
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_uri, serverSelectionTimeoutMS=_TIMEOUT_MS
    )
    try:
        log = MongoAuditLog(client[settings.mongodb_database], collection)
        try:
            page = await log.query(request)
        except InvalidCursor as exc:
            raise UsageProblem(str(exc)) from None
        except RetryableError as exc:  # the log's name for an outage
            raise DatabaseUnreachable(settings.mongodb_uri, exc.__cause__ or exc) from None
    finally:
        await client.close()
    if out.as_json:
        out.document({"records": page.records, "next_cursor": page.next_cursor})
        return page
    out.table(
        ("fact time", "session", "tenant", "type", "outcome", "turn", "by", "id"),
        (
            (
                r.fact_time.isoformat(timespec="milliseconds"),
                r.session_id,
                r.tenant_id,
                r.fact_type,
                Text(r.outcome.value, style=_OUTCOME_STYLE[r.outcome]),
                r.turn_id,
                r.source_service,
                r.id,
            )
            for r in page.records
        ),
        empty="no audit records match",
    )
    if page.next_cursor:
        out.note(f"[dim]more: --after {page.next_cursor}")
    return page
