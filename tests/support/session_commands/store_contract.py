"""What every session store must do, as tests: subclassed once per implementation.

`TestMemorySessionStore` (tests/unit) runs it against the fake the handler tests use,
`TestMongoSessionStore` (tests/integration) against the repository on the Mongo-compatible
server, so the fake cannot drift from the real thing unnoticed (eventsourcing's
`ProcessRecorderTestCase` pattern). A subclass provides the `store` fixture.
"""

from datetime import timedelta

import pytest

from contracts.codec import EncodedRecord
from services.runtime.errors import RetryableError
from services.session_commands.domain.decider import SessionCommand, decide
from services.session_commands.handler import SessionStore
from services.session_commands.mongo.group_commit import ConcurrentWriteError
from services.session_commands.mongo.session_document import StoredSession
from tests.support.session_commands.scenario import T0, create, submit

RECORD = EncodedRecord(key=b"k", value=b"v", headers=[("ce_id", b"x")])


async def apply(
    store: SessionStore,
    stored: StoredSession | None,
    command: SessionCommand,
    at: int = 0,
    record: EncodedRecord = RECORD,
) -> StoredSession:
    """Decide `command` on `stored` and save the decision with one outbox record."""
    decision = decide(stored.state if stored else None, command, now=T0 + timedelta(seconds=at))
    assert decision.state is not None
    return await store.save(stored, decision.state, decision.events, [record], command.id)


class SessionStoreContract:
    async def test_an_unknown_session_loads_as_nothing(self, store: SessionStore) -> None:
        assert await store.load("nobody") is None

    async def test_a_saved_session_loads_as_it_was_saved(self, store: SessionStore) -> None:
        command = create(session_id="c-1")
        saved = await apply(store, None, command)

        loaded = await store.load("c-1")

        assert loaded == saved
        assert (loaded.version, loaded.outbox) == (1, (RECORD,))
        assert loaded.has_processed(command.id)

    async def test_each_write_builds_on_the_previous_one(self, store: SessionStore) -> None:
        first, second = create(session_id="c-2"), submit(session_id="c-2")
        created = await apply(store, None, first)
        await apply(store, created, second, at=1)

        loaded = await store.load("c-2")

        assert loaded is not None
        assert loaded.version == 2
        assert loaded.processed_command_ids[-2:] == (first.id, second.id)
        assert loaded.state.counters.user_messages == 1

    async def test_a_write_from_a_stale_version_is_refused_as_retryable(
        self, store: SessionStore
    ) -> None:
        created = await apply(store, None, create(session_id="c-3"))
        await apply(store, created, submit(session_id="c-3"))

        with pytest.raises(ConcurrentWriteError) as refused:
            await apply(store, created, submit(session_id="c-3"))

        assert isinstance(refused.value, RetryableError)
        loaded = await store.load("c-3")
        assert loaded is not None
        assert loaded.version == 2

    async def test_creating_a_session_that_exists_is_refused(self, store: SessionStore) -> None:
        await apply(store, None, create(session_id="c-4"))

        with pytest.raises(ConcurrentWriteError):
            await apply(store, None, create(session_id="c-4"))

    async def test_the_same_command_from_the_same_version_counts_as_written(
        self, store: SessionStore
    ) -> None:
        created = await apply(store, None, create(session_id="c-5"))
        command = submit(session_id="c-5")
        decision = decide(created.state, command, now=T0)
        assert decision.state is not None
        first = await store.save(created, decision.state, decision.events, [RECORD], command.id)

        again = await store.save(created, decision.state, decision.events, [RECORD], command.id)

        assert again == first
        assert await store.load("c-5") == first

    async def test_clearing_the_outbox_keeps_the_version(self, store: SessionStore) -> None:
        saved = await apply(store, None, create(session_id="c-6"))

        cleared = await store.clear_outbox(saved)

        loaded = await store.load("c-6")
        assert loaded == cleared
        assert (loaded.outbox, loaded.version) == ((), saved.version)

    async def test_clearing_a_moved_on_session_leaves_the_newer_outbox(
        self, store: SessionStore
    ) -> None:
        created = await apply(store, None, create(session_id="c-7"))
        # Its own record: every command's records carry ids derived from the command.
        own = EncodedRecord(key=b"k", value=b"v", headers=[("ce_id", b"y")])
        newer = await apply(store, created, submit(session_id="c-7"), record=own)

        await store.clear_outbox(created)

        assert await store.load("c-7") == newer
