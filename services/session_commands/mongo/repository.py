"""MongoDB access for the writer: load, save (messages + compare-and-set), clear the outbox.

No transactions (the stand-in server has none): each write is a single-document operation, and
the order of writes (messages, then the session with its outbox) makes a crash between any two
of them harmless — see docs/session-commands.md, "crash safety". Writes of concurrent sessions
are sent together (group_commit.py). A MongoDB outage leaves here as `RetryableError`, like
every other Mongo adapter's (services/runtime/mongo_errors.py).
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from contracts.codec import EncodedRecord
from contracts.session_events import SessionErased, SessionEvent
from services.runtime.mongo_errors import database_outage
from services.session_commands.domain.state import SessionState
from services.session_commands.mongo.group_commit import GroupCommit
from services.session_commands.mongo.session_document import (
    ERASED_MESSAGE,
    Document,
    StoredSession,
    message_documents,
    outbox_entry,
    refused_commands,
    session_document,
    silent_command_ids,
    stored_session,
)

SESSIONS = "sessions"
MESSAGES = "messages"


class SessionRepository:
    def __init__(self, database: AsyncDatabase[Document], *, processed_ids_limit: int = 1_000):
        self.sessions: AsyncCollection[Document] = database[SESSIONS]
        self.messages: AsyncCollection[Document] = database[MESSAGES]
        self.processed_ids_limit = processed_ids_limit
        self._writes = GroupCommit(self.sessions, self.messages)

    async def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists with the same spec is a no-op."""
        await self.messages.create_indexes(
            [IndexModel([("session_id", ASCENDING), ("seq", ASCENDING)], unique=True)]
        )
        await self.sessions.create_indexes(
            [
                # The compare-and-set's filter, `{_id, version}`, exactly: MongoDB serves it from
                # `_id` either way; the Mongo-compatible local server uses an index only for a
                # filter with exactly its keys, and without this one scanned every session on
                # every write (docs/session-commands.md, "The compare-and-set").
                IndexModel([("_id", ASCENDING), ("version", ASCENDING)], unique=True),
                # Listings: a tenant's sessions by status, newest activity first.
                IndexModel(
                    [
                        ("tenant_id", ASCENDING),
                        ("status", ASCENDING),
                        ("last_activity_at", DESCENDING),
                    ]
                ),
                # Expiry job: inactive sessions; retention: expired ones by expiry time.
                IndexModel([("status", ASCENDING), ("last_activity_at", ASCENDING)]),
                IndexModel([("status", ASCENDING), ("expired_at", ASCENDING)]),
                # Tool deadline job: turns awaiting tools past their round's deadline.
                IndexModel([("tool_deadline", ASCENDING)]),
            ]
        )

    async def load(self, session_id: str) -> StoredSession | None:
        async with _sessions():
            document = await self.sessions.find_one({"_id": session_id})
        return None if document is None else stored_session(document)

    async def save(
        self,
        previous: StoredSession | None,
        state: SessionState,
        events: Sequence[SessionEvent],
        outbox: Sequence[EncodedRecord],
        command_id: str,
    ) -> StoredSession:
        """Insert the history entries of `events` (ones already there are left as they are),
        then write the new state with its outbox, recording `command_id`, iff nobody wrote
        since `previous` was loaded (insert for a new session, version compare-and-set
        otherwise). Raises ConcurrentWriteError when somebody did.

        A SessionErased erases the session's messages first: a crash or a lost race before
        the session is written leaves the command undone, and its redelivery erases again
        (messages a racing writer added in between included)."""
        seen = previous.processed_command_ids if previous is not None else ()
        processed = (*seen, command_id)[-self.processed_ids_limit :]
        silent = silent_command_ids(previous, processed, command_id, published=bool(events))
        refused = refused_commands(previous, command_id, events)
        version = previous.version + 1 if previous is not None else 1
        document = session_document(state, version, processed, outbox, silent, refused)
        messages = message_documents(events)
        async with _sessions():
            if any(isinstance(event, SessionErased) for event in events):
                await self.messages.update_many(
                    {"session_id": state.session_id}, {"$set": ERASED_MESSAGE}
                )
            if previous is None:
                await self._writes.create(document, messages, command_id)
            else:
                await self._writes.compare_and_set(document, messages, previous.version, command_id)
        return StoredSession(state, version, processed, tuple(outbox), silent, refused)

    async def clear_outbox(self, stored: StoredSession) -> StoredSession:
        """The outbox is published. Same version: clearing changes no state, and if another
        writer moved on meanwhile, its own outbox must stay — only the entries published here
        are removed."""
        if stored.outbox:
            published = [outbox_entry(record) for record in stored.outbox]
            async with _sessions():
                await self._writes.clear_outbox(stored.state.session_id, published)
        return replace(stored, outbox=())


def _sessions() -> AbstractAsyncContextManager[None]:
    return database_outage("session store (MongoDB)")
