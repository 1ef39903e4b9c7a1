"""Operator commands: topics, consumer-group lag, dead letters."""

import base64
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.table import Table

from contracts.codec import DecodeError, decode
from contracts.dead_letters import DeadLetter
from contracts.topics import TopicName
from services.cli.errors import BrokerUnreachable, CliError
from services.cli.kafka_clients import consumer, explain_refusal, partitions_of, producer
from services.cli.settings import CliSettings
from services.runtime.kafka_security import kafka_client_options


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


async def _admin(settings: CliSettings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=settings.client_id("cli"),
        **kafka_client_options(settings),
    )
    try:
        await admin.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        await admin.close()
        await explain_refusal(settings)
        raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    return admin


async def consumer_lag(settings: CliSettings, group: str | None = None) -> list[PartitionLag]:
    """Committed offset vs end offset for every partition a group has committed on."""
    admin = await _admin(settings)
    try:
        groups = [group] if group else sorted(g[0] for g in await admin.list_consumer_groups())
        committed: dict[str, dict[TopicPartition, int]] = {}
        for name in groups:
            offsets = await admin.list_consumer_group_offsets(name)
            committed[name] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()
    partitions = {tp for offsets in committed.values() for tp in offsets}
    if not partitions:
        return []
    async with consumer(settings) as client:
        ends = await client.end_offsets(list(partitions))
    return sorted(
        (
            PartitionLag(name, tp.topic, tp.partition, offset, ends[tp])
            for name, offsets in committed.items()
            for tp, offset in offsets.items()
        ),
        key=lambda row: (row.group, row.topic, row.partition),
    )


def print_lag(rows: list[PartitionLag], console: Console) -> None:
    table = Table("group", "topic", "partition", "committed", "end", "lag")
    for row in rows:
        table.add_row(
            row.group,
            row.topic,
            str(row.partition),
            str(row.committed),
            str(row.end),
            f"[red]{row.lag}[/]" if row.lag else "0",
        )
    console.print(table)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    for name, lag in totals.items():
        console.print(f"[bold]{name}[/]: total lag {lag}")


async def read_dead_letters(settings: CliSettings, limit: int) -> list[tuple[int, int, DeadLetter]]:
    """The newest `limit` dead letters per partition, oldest first, with their position."""
    topic = settings.topics.name(TopicName.DEAD_LETTERS)
    found: list[tuple[int, int, DeadLetter]] = []
    tps = [TopicPartition(topic, p) for p in await partitions_of(settings, topic)]
    if not tps:
        return []
    async with consumer(settings) as client:
        client.assign(tps)
        ends = await client.end_offsets(tps)
        starts = await client.beginning_offsets(tps)
        for tp in tps:
            client.seek(tp, max(starts[tp], ends[tp] - limit))
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        while pending:
            batches = await client.getmany(*pending, timeout_ms=2_000)
            if not batches:
                break
            for tp, records in batches.items():
                for record in records:
                    try:
                        message = decode(record.value, list(record.headers)).message
                    except DecodeError:
                        continue
                    if isinstance(message, DeadLetter):
                        found.append((record.partition, record.offset, message))
                if await client.position(tp) >= ends[tp]:
                    pending.discard(tp)
    return sorted(found, key=lambda item: item[2].occurred_at)


def print_dead_letters(letters: list[tuple[int, int, DeadLetter]], console: Console) -> None:
    table = Table("id", "origin", "group", "reason", "error", "when")
    for _, _, letter in letters:
        table.add_row(
            letter.id,
            f"{letter.origin_topic}[{letter.origin_partition}]@{letter.origin_offset}",
            letter.consumer_group,
            letter.reason.value,
            f"{letter.error_class}: {letter.error_message[:80]}",
            letter.occurred_at.isoformat(timespec="seconds"),
        )
    console.print(table)


async def replay_dead_letter(settings: CliSettings, letter_id: str, limit: int = 10_000) -> str:
    """Re-publish a dead letter's original record to its origin topic, if it now validates."""
    letters = {letter.id: letter for _, _, letter in await read_dead_letters(settings, limit)}
    letter = letters.get(letter_id)
    if letter is None:
        raise CliError(f"no dead letter {letter_id} among the newest {limit} per partition")
    if letter.original_truncated:
        raise CliError(
            "not replayed: the original was too large to keep whole and the dead letter holds "
            f"a cut-down copy ({letter.error_message[-200:]}); read it from "
            f"{letter.origin_topic}[{letter.origin_partition}]@{letter.origin_offset}"
        )
    value = base64.b64decode(letter.original_value_b64) if letter.original_value_b64 else None
    key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 else None
    headers = [(h.name, base64.b64decode(h.value_b64)) for h in letter.original_headers]
    topic = settings.topics.topic_of(letter.origin_topic)
    try:
        decode(value, headers, topic=topic)
    except DecodeError as exc:
        raise CliError(
            f"not replayed: the original record still fails validation ({exc}); "
            "fix the publisher and send a corrected command instead"
        ) from None
    async with producer(settings) as client:
        await client.send_and_wait(letter.origin_topic, value, key=key, headers=headers)
    return letter.origin_topic
