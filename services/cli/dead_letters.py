"""`agent-runtime dlq list / replay`: read the dead-letters topic, filter, re-publish.

Reads without a consumer group (it commits nothing and disturbs no one): the newest `limit`
records of each partition, then the filters. A replay re-publishes a dead letter's original
key, value and headers to its origin topic, only if the record now validates; consumers are
idempotent (docs/operations.md#delivery-guarantees), so a replayed command applied before is a
no-op.
"""

import base64
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from contracts.codec import DecodeError, decode
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.topics import TopicName
from services.cli.errors import CliError, ExitCode
from services.cli.kafka_clients import consumer, existing_partitions, producer
from services.cli.settings import CliSettings

READ_DEADLINE_S: Final = 60.0
"""How long a listing may take to read each partition up to the end it had at the start."""


class DeadLettersUnread(CliError):
    """Some partitions did not deliver up to their end offsets in time: a partial listing
    would make `dlq replay --all` replay a silent subset, so nothing is listed."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, topic: str, partitions: Collection[int], deadline_s: float) -> None:
        super().__init__(
            f"could not read partitions {sorted(partitions)} of {topic!r} to their end within "
            f"{deadline_s:.0f} s (is a partition leader unavailable?); nothing was listed"
        )


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter and where it sits on the dead-letters topic."""

    partition: int
    offset: int
    letter: DeadLetter


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Empty fields match everything; several values of one field match any of them."""

    ids: frozenset[str] = frozenset()
    origin_topics: frozenset[str] = frozenset()
    """Full topic names (the CLI resolves catalogue names such as `commands`)."""
    reasons: frozenset[DeadLetterReason] = frozenset()
    services: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    @property
    def selects_all(self) -> bool:
        chosen = (self.ids, self.origin_topics, self.reasons, self.services)
        return not any(chosen) and self.since is None and self.until is None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (not self.ids or letter.id in self.ids)
            and (not self.origin_topics or letter.origin_topic in self.origin_topics)
            and (not self.reasons or letter.reason in self.reasons)
            and (not self.services or letter.source_service in self.services)
            and (self.since is None or letter.occurred_at >= self.since)
            and (self.until is None or letter.occurred_at < self.until)
        )


def origin_topic_names(settings: CliSettings, topics: Collection[str]) -> frozenset[str]:
    """`commands` means the deployment's commands topic; anything else is a full name."""
    known = {topic.value: topic for topic in TopicName}
    return frozenset(
        settings.topics.name(known[name]) if name in known else name for name in topics
    )


async def read_dead_letters(
    settings: CliSettings, limit: int, wanted: DeadLetterFilter | None = None
) -> list[StoredDeadLetter]:
    """The matching dead letters among the newest `limit` of each partition, oldest first."""
    topic = settings.topics.name(TopicName.DEAD_LETTERS)
    found: list[StoredDeadLetter] = []
    # A missing dead-letters topic is a wrong prefix (exit 4, as `audit tail`), not "no dead
    # letters": `dlq replay --all` under a typo'd prefix said `replayed 0`, exit 0.
    tps = [TopicPartition(topic, p) for p in await existing_partitions(settings, topic)]
    async with consumer(settings) as client:
        client.assign(tps)
        ends = await client.end_offsets(tps)
        starts = await client.beginning_offsets(tps)
        for tp in tps:
            client.seek(tp, max(starts[tp], ends[tp] - limit))
        pending = {tp for tp in tps if ends[tp] > max(starts[tp], ends[tp] - limit)}
        deadline = time.monotonic() + READ_DEADLINE_S
        while pending:
            if time.monotonic() > deadline:
                raise DeadLettersUnread(topic, [tp.partition for tp in pending], READ_DEADLINE_S)
            # An empty answer is not the end: a loaded broker can take seconds to answer the
            # first fetch after a seek. The end is each partition's end offset at the start.
            batches = await client.getmany(*pending, timeout_ms=1_000)
            for records in batches.values():
                for record in records:
                    try:
                        message = decode(record.value, list(record.headers)).message
                    except DecodeError:
                        continue
                    if isinstance(message, DeadLetter) and (
                        wanted is None or wanted.matches(message)
                    ):
                        found.append(StoredDeadLetter(record.partition, record.offset, message))
            # By position, not by the records seen: a range deleted by retention meanwhile
            # moves a partition to its end without returning anything.
            pending = {tp for tp in pending if await client.position(tp) < ends[tp]}
    return sorted(found, key=lambda stored: (stored.letter.occurred_at, stored.letter.id))


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    WOULD_REPLAY = "would_replay"
    """--dry-run: it validates and would be re-published."""
    SKIPPED = "skipped"
    """A cut-down copy (`original_truncated`): replay does not handle it, the origin has it."""
    FAILED = "failed"
    """The original still fails validation, or the broker refused the publish."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    id: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    outcome: ReplayOutcome
    detail: str = ""


@dataclass(slots=True)
class ReplaySummary:
    dry_run: bool
    results: list[ReplayResult] = field(default_factory=list)

    def count(self, outcome: ReplayOutcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def succeeded(self) -> int:
        return self.count(ReplayOutcome.WOULD_REPLAY if self.dry_run else ReplayOutcome.REPLAYED)

    @property
    def not_replayed(self) -> int:
        return len(self.results) - self.succeeded

    def counts(self) -> dict[str, int]:
        done = "would_replay" if self.dry_run else "replayed"
        return {
            done: self.succeeded,
            "skipped": self.count(ReplayOutcome.SKIPPED),
            "failed": self.count(ReplayOutcome.FAILED),
        }


async def replay(
    settings: CliSettings,
    letters: list[StoredDeadLetter],
    *,
    dry_run: bool,
    on_result: Callable[[ReplayResult], None] = lambda _: None,
) -> ReplaySummary:
    """Replay (or, dry, only check) each letter in order; `on_result` after each one."""
    summary = ReplaySummary(dry_run=dry_run)

    def record(result: ReplayResult) -> None:
        summary.results.append(result)
        on_result(result)

    if dry_run:
        for stored in letters:
            refusal = _checked(settings, stored.letter)
            record(refusal or _result(stored.letter, ReplayOutcome.WOULD_REPLAY))
        return summary
    async with producer(settings) as client:
        for stored in letters:
            letter = stored.letter
            refusal = _checked(settings, letter)
            if refusal is not None:
                record(refusal)
                continue
            try:
                await client.send_and_wait(
                    letter.origin_topic,
                    _bytes(letter.original_value_b64),
                    key=_bytes(letter.original_key_b64),
                    headers=_headers(letter),
                )
            except KafkaError as exc:
                record(_result(letter, ReplayOutcome.FAILED, f"publish failed: {exc!r}"))
            else:
                record(_result(letter, ReplayOutcome.REPLAYED))
    return summary


def _checked(settings: CliSettings, letter: DeadLetter) -> ReplayResult | None:
    """Why `letter` cannot be replayed, or None when its original validates now."""
    # Only to this deployment's topics (`--topic-prefix`): a dead-letters topic shared by two
    # deployments (AGENT_RUNTIME_DEAD_LETTER_TOPIC) holds the other's letters too, whose
    # originals `--all` re-published into the other deployment's topics.
    if settings.topics.topic_of(letter.origin_topic) is None:
        return _result(
            letter,
            ReplayOutcome.FAILED,
            f"its origin topic {letter.origin_topic!r} is not a topic of this deployment "
            f"(prefix {settings.topic_prefix!r}); replay it with that deployment's --topic-prefix",
        )
    if letter.original_truncated:
        return _result(
            letter,
            ReplayOutcome.SKIPPED,
            "a cut-down copy of a record too large to keep whole; read the original at "
            f"{letter.origin_topic}[{letter.origin_partition}]@{letter.origin_offset}",
        )
    try:
        decode(
            _bytes(letter.original_value_b64),
            _headers(letter),
            topic=settings.topics.topic_of(letter.origin_topic),
        )
    except DecodeError as exc:
        return _result(
            letter,
            ReplayOutcome.FAILED,
            f"the original still fails validation ({exc}); fix the publisher and send a "
            "corrected command instead",
        )
    return None


def _result(letter: DeadLetter, outcome: ReplayOutcome, detail: str = "") -> ReplayResult:
    return ReplayResult(
        letter.id,
        letter.origin_topic,
        letter.origin_partition,
        letter.origin_offset,
        outcome,
        detail,
    )


def _bytes(b64: str | None) -> bytes | None:
    return None if b64 is None else base64.b64decode(b64)


def _headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    return [(h.name, base64.b64decode(h.value_b64)) for h in letter.original_headers]
