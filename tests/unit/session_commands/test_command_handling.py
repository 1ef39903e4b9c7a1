"""The handler's sequence with an in-memory store and publisher: idempotency, the outbox,
the cache's freshness rule, and which failures are retried or dead-lettered."""

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from contracts.base import Message
from contracts.codec import DecodeError, EncodedRecord, decode, encode
from contracts.topics import TopicCatalogue, TopicName
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from services.session_commands.handler import KeyMismatch, SessionCommandHandler
from services.session_commands.mongo.session_document import StoredSession
from services.session_commands.session_cache import SessionCache
from tests.support.session_commands.memory_store import MemoryStore
from tests.support.session_commands.scenario import SESSION, T0, complete, create, submit

pytestmark = pytest.mark.unit

TOPICS = TopicCatalogue(prefix="t.")
COMMANDS, TURNS = TOPICS.name(TopicName.COMMANDS), TOPICS.name(TopicName.TURNS)


class Published:
    def __init__(self) -> None:
        self.records: list[tuple[str, EncodedRecord]] = []
        self.fail = False

    async def __call__(self, topic: str, record: EncodedRecord) -> None:
        if self.fail:  # what ServiceRuntime.publish raises while the broker is unavailable
            raise RetryableError("broker unavailable for t.session-events")
        self.records.append((topic, record))

    def types(self) -> list[str]:
        return [type(decode(r.value, r.headers).message).__name__ for _, r in self.records]


def record_of(message: Message, topic: str = COMMANDS, offset: int = 0) -> Record:
    encoded = encode(message, source="test")
    return Record(topic, 0, offset, encoded.key, encoded.value, tuple(encoded.headers))


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def published() -> Published:
    return Published()


def handler_for(
    store: MemoryStore, published: Published, cache: SessionCache | None = None
) -> SessionCommandHandler:
    return SessionCommandHandler(
        topics=TOPICS,
        repository=store,
        publish=published,
        clock=lambda: T0,
        cache=cache,
        span_traceparent=lambda: None,
    )


async def test_a_command_is_written_published_and_its_outbox_cleared(
    store: MemoryStore, published: Published
) -> None:
    handle = handler_for(store, published)

    await handle(record_of(create()))
    await handle(record_of(submit()))

    assert published.types() == ["SessionCreated", "UserMessageAccepted", "TurnStarted"]
    assert {topic for topic, _ in published.records} == {TOPICS.name(TopicName.SESSION_EVENTS)}
    assert store.documents[SESSION].version == 2
    await handle.settle()  # the outbox is cleared behind the command (docs: step 7)
    assert store.documents[SESSION].outbox == ()


async def test_a_redelivered_command_publishes_nothing(
    store: MemoryStore, published: Published
) -> None:
    command = record_of(submit())
    handle = handler_for(store, published)
    await handle(record_of(create()))
    await handle(command)
    count = len(published.records)

    await handle(command)
    await handle.settle()
    await handler_for(store, published)(command)  # a new instance: no cache

    assert len(published.records) == count
    assert store.writes == 2


async def test_an_outbox_left_by_a_crash_is_published_before_anything_else(
    store: MemoryStore, published: Published
) -> None:
    crashed = handler_for(store, Published())
    await crashed(record_of(create()))
    created = store.documents[SESSION]
    pending = encode(submit(), source="test")  # stands for the lost events
    store.documents[SESSION] = replace(created, outbox=(pending,))

    await handler_for(store, published)(record_of(submit(content="next")))

    assert published.records[0][1] == pending
    assert published.types()[1:] == ["UserMessageAccepted", "TurnStarted"]


async def test_a_decision_without_a_write_is_retaken_on_a_fresh_read(
    store: MemoryStore, published: Published
) -> None:
    cache = SessionCache()
    ours = handler_for(store, published, cache)
    await ours(record_of(create()))
    # Meanwhile another owner started a turn; our cache still shows the session idle.
    other = handler_for(store, Published())
    await other(record_of(submit()))
    in_flight = store.documents[SESSION].state

    await ours(record_of(complete(in_flight), topic=TURNS))

    assert published.types()[-2:] == ["AssistantMessageAppended", "TurnCompleted"]


async def test_a_version_conflict_is_retried_and_forgets_the_cached_state(
    store: MemoryStore, published: Published
) -> None:
    cache = SessionCache()
    handle = handler_for(store, published, cache)
    await handle(record_of(create()))
    store.conflict_next = True

    with pytest.raises(RetryableError):
        await handle(record_of(submit()))

    assert len(cache) == 0


async def test_a_broker_outage_is_retried_and_the_outbox_kept(
    store: MemoryStore, published: Published
) -> None:
    handle = handler_for(store, published)
    await handle(record_of(create()))
    published.fail = True
    command = record_of(submit())

    with pytest.raises(RetryableError):
        await handle(command)

    assert len(store.documents[SESSION].outbox) == 2
    published.fail = False
    await handle(command)  # the redelivery publishes the kept outbox
    assert published.types() == ["SessionCreated", "UserMessageAccepted", "TurnStarted"]


async def test_records_that_must_not_be_applied_fail_permanently(
    store: MemoryStore, published: Published
) -> None:
    handle = handler_for(store, published)
    good = record_of(create())

    with pytest.raises(DecodeError):
        await handle(replace(good, value=b"{"))
    with pytest.raises(KeyMismatch):
        await handle(replace(good, key=b"another-session"))
    with pytest.raises(DecodeError):  # a session event is not a command
        await handle(replace(good, topic=TURNS))
    assert store.writes == 0


async def test_an_outbox_goes_to_publish_many_as_one_ordered_batch(
    store: MemoryStore, published: Published
) -> None:
    batches: list[tuple[str, list[EncodedRecord]]] = []

    async def publish_many(topic: str, records: Sequence[EncodedRecord]) -> None:
        batches.append((topic, list(records)))

    handle = SessionCommandHandler(
        topics=TOPICS,
        repository=store,
        publish=published,
        publish_many=publish_many,
        clock=lambda: T0,
        span_traceparent=lambda: None,
    )
    await handle(record_of(create()))
    await handle(record_of(submit()))

    assert not published.records  # nothing one at a time
    assert [len(records) for _, records in batches] == [1, 2]
    names = [type(decode(r.value, r.headers).message).__name__ for r in batches[1][1]]
    assert names == ["UserMessageAccepted", "TurnStarted"]
    await handle.settle()
    assert store.documents[SESSION].outbox == ()


async def test_the_command_returns_before_its_outbox_is_cleared(
    store: MemoryStore, published: Published
) -> None:
    """Step 7 is behind the command: a clear the store is slow to write holds nothing up."""
    handle = handler_for(store, published)
    await handle(record_of(create()))
    await handle.settle()
    release = asyncio.Event()
    clear = store.clear_outbox

    async def slow_clear(stored: StoredSession) -> StoredSession:
        await release.wait()
        return await clear(stored)

    store.clear_outbox = slow_clear  # type: ignore[method-assign]
    await asyncio.wait_for(handle(record_of(submit())), 5.0)

    assert store.documents[SESSION].outbox != ()  # published, not yet cleared
    release.set()
    await handle.settle()
    assert store.documents[SESSION].outbox == ()


async def test_another_tenant_reusing_a_processed_command_id_is_refused_not_ignored(
    store: MemoryStore, published: Published
) -> None:
    handle = handler_for(store, published)
    await handle(record_of(create()))
    owners = submit()
    await handle(record_of(owners))
    count = len(published.records)

    foreign = owners.model_copy(update={"tenant_id": "someone-else"})
    await handle(record_of(foreign, offset=7))

    assert published.types()[count:] == ["CommandRejected"]
    rejected = decode(published.records[-1][1].value, published.records[-1][1].headers).message
    assert rejected.reason.value == "unknown_session"  # type: ignore[attr-defined]
    await handle(record_of(owners, offset=8))  # the owner's redelivery is still a no-op
    assert len(published.records) == count + 1


async def test_a_correlation_is_carried_on_up_to_an_ids_length(
    store: MemoryStore, published: Published
) -> None:
    # Carried on, a 900 kB ce_correlationid made a TurnStarted the broker refuses: it stayed in
    # the outbox and every later command of the session was dead-lettered on it.
    handle = handler_for(store, published)
    await handle(record_of(create()))
    cases = (("c" * 900_000, False), ("c" * 129, False), ("c" * 128, True), (".req-7", True))
    for correlation, carried in cases:
        command = submit()
        encoded = encode(command, source="test", correlation_id=correlation)
        before = len(published.records)
        await handle(Record(COMMANDS, 0, 1, encoded.key, encoded.value, tuple(encoded.headers)))
        expected = (correlation if carried else command.id).encode()
        events = published.records[before:]
        assert events
        assert all(dict(r.headers)["ce_correlationid"] == expected for _, r in events)
