"""`agent-runtime groups lag`: per partition, committed vs end offset and who holds it.

Like `kafka-consumer-groups --describe`: a row per partition of the deployment's topics (the
catalogue under the topic prefix) that a group has committed on or has assigned to a member,
with the member id, client id, host and static instance name of the member holding it.
"""

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import GroupAuthorizationFailedError, KafkaConnectionError, KafkaError
from aiokafka.protocol.admin import (
    DescribeGroupsRequest,
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)
from aiokafka.protocol.api import RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Bytes, Int16, Int32, Schema, String
from rich.text import Text

from contracts.topics import ALL_SERVICES
from services.cli.errors import BrokerUnreachable, NotAuthorized, NotFound
from services.cli.kafka_clients import consumer, explain_refusal
from services.cli.output import Output
from services.cli.settings import CliSettings
from services.runtime.kafka_access import principal
from services.runtime.kafka_security import kafka_client_options

_CONCURRENT_REQUESTS: Final = 16
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    instance: str | None
    """The static member's `group.instance.id` (AGENT_RUNTIME_INSTANCE_NAME), if any."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    """None: assigned, nothing committed yet."""
    end: int
    lag: int | None
    """Never committed: the records from the partition's earliest offset (None when the
    settings' auto_offset_reset is `latest`: where the group starts is not known)."""
    member: Member | None
    """None: no member holds the partition now (the group is empty or rebalancing)."""


async def consumer_lag(settings: CliSettings, group: str | None = None) -> list[PartitionLag]:
    catalogue = {spec.name for spec in settings.topics.specs()}
    admin = await _admin(settings)
    try:
        # A prefix none of whose topics exists is a wrong prefix (exit 4, as `audit tail`):
        # "no committed offsets yet", exit 0, let a mistyped prefix pass a `--max-lag` gate.
        if not catalogue & set(await admin.list_topics()):
            raise NotFound(
                f"no topic of the prefix {settings.topic_prefix!r} exists (is the prefix right?)"
            )
        listed = sorted(g[0] for g in await admin.list_consumer_groups())
        # Kafka lists only the groups the principal may DESCRIBE: one the ACLs hide is absent
        # (no rows, exit 0 — `--max-lag` then passes), not missing. Asking for it says which.
        expected = (
            [group]
            if group is not None
            else [f"{settings.topic_prefix}{service.value}" for service in ALL_SERVICES]
        )
        await _refuse_hidden(admin, settings, [name for name in expected if name not in listed])
        if group is not None and group not in listed:
            raise NotFound(f"no consumer group {group!r} on {settings.kafka_bootstrap_servers}")
        names = [group] if group is not None else listed
        # Concurrently: a shared cluster holds other deployments' groups by the hundred.
        fetched = await _bounded(admin.list_consumer_group_offsets(name) for name in names)
        committed = {
            name: {
                tp: meta.offset
                for tp, meta in offsets.items()
                if meta.offset >= 0 and tp.topic in catalogue
            }
            for name, offsets in zip(names, fetched, strict=True)
        }
        # Members only of the groups that read these topics: those that committed on them,
        # and those named after the prefix (a service's group before its first commit).
        ours = [
            name
            for name in names
            if committed[name] or name == group or name.startswith(settings.topic_prefix)
        ]
        members = _holders(await _bounded(_describe(admin, name) for name in ours), catalogue)
    except (KafkaConnectionError, OSError) as exc:
        raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    finally:
        await admin.close()
    keys = {(name, tp) for name, offsets in committed.items() for tp in offsets} | set(members)
    if not keys:
        return []
    uncommitted = list({tp for name, tp in keys if tp not in committed.get(name, {})})
    async with consumer(settings) as client:
        ends = await client.end_offsets(list({tp for _, tp in keys}))
        # A group that never committed on a partition starts at its earliest offset (the
        # services' auto_offset_reset): every retained record is still to be read. Shown as
        # no lag, a group stuck on its first records passed `--max-lag` (KEDA counts them).
        starts = (
            await client.beginning_offsets(uncommitted)
            if uncommitted and settings.auto_offset_reset == "earliest"
            else {}
        )
    rows = []
    for name, tp in keys:
        offset = committed.get(name, {}).get(tp)
        end = ends[tp]
        start = starts.get(tp)
        rows.append(
            PartitionLag(
                group=name,
                topic=tp.topic,
                partition=tp.partition,
                committed=offset,
                end=end,
                lag=max(end - offset, 0)
                if offset is not None
                else (None if start is None else max(end - start, 0)),
                member=members.get((name, tp)),
            )
        )
    return sorted(rows, key=lambda row: (row.group, row.topic, row.partition))


class _DescribeGroupsResponseV4(Response):  # type: ignore[misc]
    """v4 (KIP-345) adds each member's `group_instance_id`: the static name of a member
    (`AGENT_RUNTIME_INSTANCE_NAME`), null for a dynamic one. Kafka's DescribeGroupsResponse.json."""

    API_KEY = 15
    API_VERSION = 4
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "groups",
            Array(
                ("error_code", Int16),
                ("group", String("utf-8")),
                ("state", String("utf-8")),
                ("protocol_type", String("utf-8")),
                ("protocol", String("utf-8")),
                (
                    "members",
                    Array(
                        ("member_id", String("utf-8")),
                        ("group_instance_id", String("utf-8")),
                        ("client_id", String("utf-8")),
                        ("client_host", String("utf-8")),
                        ("member_metadata", Bytes),
                        ("member_assignment", Bytes),
                    ),
                ),
                ("authorized_operations", Int32),
            ),
        ),
    )


class _DescribeGroupsRequestV4(RequestStruct):  # type: ignore[misc]
    API_KEY = 15
    API_VERSION = 4
    RESPONSE_TYPE = _DescribeGroupsResponseV4
    SCHEMA = Schema(("groups", Array(String("utf-8"))), ("include_authorized_operations", Boolean))


class _DescribeGroups(DescribeGroupsRequest):  # type: ignore[misc]
    """DescribeGroups v4 where the broker has it (every broker since Kafka 2.4), else v0-v2.
    Not aiokafka's v3: aiokafka 0.14 reads a v3 answer with the v2 schema (its
    DescribeGroupsRequest_v3 names DescribeGroupsResponse_v2) and fails on a buffer underrun,
    so its `describe_consumer_groups` cannot describe a group on a current broker; and its
    newest version, v3, has no member instance names."""


_DescribeGroups._CLASSES = (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
    _DescribeGroupsRequestV4,
)


async def _refuse_hidden(
    admin: AIOKafkaAdminClient, settings: CliSettings, unlisted: Iterable[str]
) -> None:
    """NotAuthorized when the ACLs keep one of `unlisted` from this principal (a group that
    does not exist is described as `Dead`, without an error)."""
    for name in unlisted:
        try:
            await admin.find_coordinator(name)
        except GroupAuthorizationFailedError:
            raise NotAuthorized(
                f"Kafka does not let {principal(settings)} describe consumer group {name!r}: "
                "its ACLs grant it no access (docs/security.md: the operators' DESCRIBE on "
                "the prefix's groups and topics)"
            ) from None


async def _describe(admin: AIOKafkaAdminClient, group: str) -> Any:
    coordinator = await admin.find_coordinator(group)
    return await admin._send_request(_DescribeGroups([group]), coordinator)


async def _bounded(requests: Iterable[Awaitable[T]]) -> list[T]:
    """The requests' answers in order, at most `_CONCURRENT_REQUESTS` in flight."""
    limit = asyncio.Semaphore(_CONCURRENT_REQUESTS)

    async def one(request: Awaitable[T]) -> T:
        async with limit:
            return await request

    return await asyncio.gather(*(one(request) for request in requests))


def _holders(
    responses: Iterable[Any], catalogue: set[str]
) -> dict[tuple[str, TopicPartition], Member]:
    """Who holds which partition, from DescribeGroups answers (any protocol version)."""
    held: dict[tuple[str, TopicPartition], Member] = {}
    for response in responses:
        for described in response.groups:
            group, protocol_type, group_members = described[1], described[3], described[5]
            if protocol_type != "consumer":
                continue
            for fields in group_members:
                # v0-v3: (member_id, client_id, client_host, metadata, assignment); v4+ adds
                # group_instance_id after member_id. Counted from the end, both read alike.
                member = Member(
                    member_id=fields[0],
                    client_id=fields[-4],
                    host=fields[-3].lstrip("/"),
                    instance=fields[1] if len(fields) == 6 else None,
                )
                if not fields[-1]:
                    continue
                assignment = ConsumerProtocolMemberAssignment.decode(fields[-1])
                for tp in assignment.partitions():
                    if tp.topic in catalogue:
                        held[(group, tp)] = member
    return held


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


def above(rows: Iterable[PartitionLag], max_lag: int) -> list[PartitionLag]:
    """The partitions whose lag exceeds `max_lag` (`--max-lag`)."""
    return [row for row in rows if row.lag is not None and row.lag > max_lag]


def print_lag(rows: list[PartitionLag], out: Output) -> None:
    if out.as_json:
        out.document(rows)
        return
    out.table(
        ("group", "topic", "partition", "committed", "end", "lag", "client id", "host", "member"),
        (
            (
                row.group,
                row.topic,
                row.partition,
                row.committed,
                row.end,
                Text(_text(row.lag), style="red" if out.for_people and row.lag else ""),
                row.member.client_id if row.member else None,
                row.member.host if row.member else None,
                (row.member.instance or row.member.member_id) if row.member else None,
            )
            for row in rows
        ),
    )
    for group in sorted({row.group for row in rows}):
        mine = [row for row in rows if row.group == group]
        members = {row.member.member_id for row in mine if row.member}
        lag = sum(row.lag or 0 for row in mine)
        out.note(
            f"[bold]{group}[/]: total lag {lag} over {len(mine)} partitions, {len(members)} members"
        )


def _text(value: int | None) -> str:
    return "-" if value is None else str(value)
