"""The session store against the Mongo-compatible server: compare-and-set under group commit,
idempotent message inserts, the outbox, and the read side (paging, both orders)."""

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.codec import EncodedRecord
from services.session_commands.domain.decider import SessionCommand, decide
from services.session_commands.domain.state import SessionStatus
from services.session_commands.mongo.group_commit import ConcurrentWriteError
from services.session_commands.mongo.queries import SessionQueries
from services.session_commands.mongo.repository import SessionRepository
from services.session_commands.mongo.session_document import Document, StoredSession
from tests.support.session_commands.scenario import T0, close, create, erase, submit
from tests.support.session_commands.store_contract import SessionStoreContract

pytestmark = pytest.mark.integration

RECORD = EncodedRecord(key=b"k", value=b"v", headers=[("ce_id", b"x")])


@pytest.fixture
async def database(mongodb_uri: str, mongo_database_name: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        yield client[mongo_database_name]
    finally:
        await client.close()


@pytest.fixture
async def repository(database: Any) -> SessionRepository:
    repository = SessionRepository(database)
    await repository.ensure_indexes()
    await repository.ensure_indexes()  # idempotent
    return repository


async def apply(
    repository: SessionRepository,
    stored: StoredSession | None,
    command: SessionCommand,
    at: int = 0,
) -> StoredSession:
    decision = decide(stored.state if stored else None, command, now=T0 + timedelta(seconds=at))
    assert decision.state is not None
    return await repository.save(stored, decision.state, decision.events, [RECORD], command.id)


class TestMongoSessionStore(SessionStoreContract):
    """The store contract the in-memory fake is held to, against the real repository."""

    @pytest.fixture
    def store(self, repository: SessionRepository) -> SessionRepository:
        return repository


async def test_a_write_from_a_stale_version_is_refused(repository: SessionRepository) -> None:
    created = await apply(repository, None, create(session_id="cas-1"))

    writes = await asyncio.gather(
        apply(repository, created, submit(session_id="cas-1")),
        apply(repository, created, submit(session_id="cas-1")),
        return_exceptions=True,
    )

    refused = [w for w in writes if isinstance(w, ConcurrentWriteError)]
    assert len(refused) == 1, writes
    loaded = await repository.load("cas-1")
    assert loaded is not None
    assert loaded.version == 2
    with pytest.raises(ConcurrentWriteError):
        await apply(repository, None, create(session_id="cas-1"))


async def test_the_compare_and_set_is_guarded_by_an_index_on_exactly_its_filter(
    repository: SessionRepository,
) -> None:
    # The local server serves a filter from an index only when its keys are the index's: the
    # compare-and-set filters on {_id, version}, so without (_id, version) it scanned every
    # session (benchmarks/conditional_writes.py).
    indexes = await repository.sessions.index_information()
    guards = [i for i in indexes.values() if i["key"] == [("_id", 1), ("version", 1)]]
    assert len(guards) == 1
    assert guards[0]["unique"] is True


async def test_many_sessions_written_together_each_get_their_own_outcome(
    repository: SessionRepository,
) -> None:
    ids = [f"batch-{i}" for i in range(50)]
    created = await asyncio.gather(*(apply(repository, None, create(session_id=s)) for s in ids))
    stale = created[7]
    await apply(repository, stale, submit(session_id=stale.state.session_id))

    outcomes = await asyncio.gather(
        *(apply(repository, c, submit(session_id=c.state.session_id)) for c in created),
        return_exceptions=True,
    )

    failed = [i for i, o in enumerate(outcomes) if isinstance(o, ConcurrentWriteError)]
    assert failed == [7]


async def test_messages_are_inserted_once_and_the_outbox_clears(
    repository: SessionRepository, database: Any
) -> None:
    created = await apply(repository, None, create(session_id="out-1"))
    command = submit(session_id="out-1")
    decision = decide(created.state, command, now=T0)
    assert decision.state is not None
    await repository.save(created, decision.state, decision.events, [RECORD], command.id)
    loaded = await repository.load("out-1")
    assert loaded is not None
    # The same command applied again from the same version (a zombie owner, or a redelivery
    # that raced the first write) made the same decision: it counts as written, and its
    # messages are not inserted twice.
    await repository.save(created, decision.state, decision.events, [RECORD], command.id)
    assert await database["messages"].count_documents({"session_id": "out-1"}) == 1
    assert loaded.outbox == (RECORD,)
    assert loaded.has_processed(command.id)

    await repository.clear_outbox(loaded)

    again = await repository.load("out-1")
    assert again is not None
    assert (again.outbox, again.version) == ((), loaded.version)


async def test_listing_and_history_pages(repository: SessionRepository, database: Any) -> None:
    for i in range(5):
        stored = await apply(repository, None, create(session_id=f"list-{i}", title=f"t{i}"), i)
    stored = await apply(repository, stored, close(session_id="list-4"), 10)
    history = await apply(repository, None, create(session_id="hist"), 20)
    for n in range(7):
        history = await apply(repository, history, submit(f"m{n}", session_id="hist"), 21 + n)
    queries = SessionQueries(database)

    first = await queries.list_sessions(tenant_id="tenant-a", page=1, page_size=4)
    second = await queries.list_sessions(tenant_id="tenant-a", page=2, page_size=4)
    active = await queries.list_sessions(tenant_id="tenant-a", active=True, page_size=100)
    inactive = await queries.list_sessions(tenant_id="tenant-a", active=False)

    assert first.total == 6
    assert [s.session_id for s in first.sessions + second.sessions] == [
        "hist", "list-4", "list-3", "list-2", "list-1", "list-0",
    ]  # fmt: skip
    assert first.pages == 2
    assert "list-4" not in {s.session_id for s in active.sessions}
    assert [(s.session_id, s.status) for s in inactive.sessions] == [
        ("list-4", SessionStatus.CLOSED)
    ]
    assert await queries.list_sessions(tenant_id="nobody") == type(first)([], 1, 20, 0)

    oldest = await queries.history("hist", tenant_id="tenant-a", limit=3)
    assert [m.seq for m in oldest.messages] == [1, 2, 3]
    rest = await queries.history(
        "hist", tenant_id="tenant-a", limit=10, after_seq=oldest.next_after_seq
    )
    assert ([m.seq for m in rest.messages], rest.next_after_seq) == ([4, 5, 6, 7], None)
    newest = await queries.history("hist", tenant_id="tenant-a", limit=3, newest_first=True)
    assert [m.content for m in newest.messages] == ["m6", "m5", "m4"]
    state = await queries.get_session("hist", tenant_id="tenant-a")
    assert state is not None
    assert state.counters.user_messages == 7
    assert await queries.get_session("hist", tenant_id="other") is None
    assert await queries.history("hist", tenant_id="other") == type(oldest)([], None)
    with pytest.raises(ValueError, match="page"):
        await queries.list_sessions(tenant_id="tenant-a", page=0)


async def test_erasure_empties_the_messages_and_a_redelivery_erases_again(
    repository: SessionRepository, database: Any
) -> None:
    stored = await apply(repository, None, create(session_id="gone", title="Ada's case"), 0)
    stored = await apply(repository, stored, submit("secret one", session_id="gone"), 1)
    command = erase(session_id="gone")
    decision = decide(stored.state, command, now=T0 + timedelta(seconds=2))
    assert decision.state is not None
    erased = await repository.save(stored, decision.state, decision.events, [], command.id)

    # A message a racing writer inserted meanwhile, then the erasure redelivered (from the
    # same version and command id: counted as written) erases it too.
    late = {**(await database["messages"].find_one({"session_id": "gone"})), "_id": "gone#9"}
    await database["messages"].insert_one(late | {"seq": 9, "content": "racing text"})
    await repository.save(stored, decision.state, decision.events, [], command.id)

    messages = await database["messages"].find({"session_id": "gone"}).sort("seq").to_list(None)
    assert [(m["seq"], m["content"], m["erased"]) for m in messages] == [
        (1, "", True),
        (9, "", True),
    ]
    document = await database["sessions"].find_one({"_id": "gone"})
    assert document is not None
    assert (document["status"], document["title"]) == ("erased", "")
    assert "secret one" not in str(document)
    assert erased.state.status is SessionStatus.ERASED
    queries = SessionQueries(database)
    history = await queries.history("gone", tenant_id="tenant-a")
    assert [m.content for m in history.messages] == ["", ""]
