"""MongoDB access for the writer: load, append messages, compare-and-set, clear the outbox.

No transactions (the stand-in server has none): each write is a single-document operation, and
the order of writes (messages, then the session with its outbox) makes a crash between any two
of them harmless — see docs/session-commands.md, "crash safety".
"""

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from contracts.codec import EncodedRecord
from contracts.session_events import SessionEvent
from services.session_commands.session_document import (
    Document,
    StoredSession,
    message_documents,
    session_document,
    stored_session,
)
from services.session_commands.state import SessionState

SESSIONS = "sessions"
MESSAGES = "messages"
_DUPLICATE_KEY = 11000


class ConcurrentWriteError(Exception):
    """The session document changed since it was loaded: another writer (a zombie owner after a
    rebalance) got there first. Retry: reload, and the processed-id check sorts it out."""


class SessionRepository:
    def __init__(self, database: AsyncDatabase[Document], *, processed_ids_limit: int = 1_000):
        self.sessions: AsyncCollection[Document] = database[SESSIONS]
        self.messages: AsyncCollection[Document] = database[MESSAGES]
        self.processed_ids_limit = processed_ids_limit

    async def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists with the same spec is a no-op."""
        await self.messages.create_indexes(
            [IndexModel([("session_id", ASCENDING), ("seq", ASCENDING)], unique=True)]
        )
        await self.sessions.create_indexes(
            [
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
            ]
        )

    async def load(self, session_id: str) -> StoredSession | None:
        document = await self.sessions.find_one({"_id": session_id})
        return None if document is None else stored_session(document)

    async def append_messages(self, events: Sequence[SessionEvent]) -> None:
        """Insert the history entries of `events`; ones already there (a redelivery, or a
        crash after this step) are left as they are."""
        documents = message_documents(events)
        if not documents:
            return
        try:
            await self.messages.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise

    async def save(
        self,
        previous: StoredSession | None,
        state: SessionState,
        outbox: Sequence[EncodedRecord],
        command_id: str,
    ) -> StoredSession:
        """Write the new state with its outbox, recording `command_id`, iff nobody wrote since
        `previous` was loaded (insert for a new session, version compare-and-set otherwise)."""
        seen = previous.processed_command_ids if previous is not None else ()
        processed = (*seen, command_id)[-self.processed_ids_limit :]
        version = previous.version + 1 if previous is not None else 1
        document = session_document(state, version, processed, outbox)
        if previous is None:
            try:
                await self.sessions.insert_one(document)
            except DuplicateKeyError:
                raise ConcurrentWriteError(
                    f"session {state.session_id} created meanwhile"
                ) from None
        else:
            result = await self.sessions.replace_one(
                {"_id": state.session_id, "version": previous.version}, document
            )
            if result.matched_count != 1:
                raise ConcurrentWriteError(
                    f"session {state.session_id} changed since version {previous.version}"
                )
        return StoredSession(state, version, processed, tuple(outbox))

    async def clear_outbox(self, stored: StoredSession) -> StoredSession:
        """The outbox is published. Same version: clearing changes no state, and if another
        writer moved on meanwhile, its own outbox must stay — then this matches nothing."""
        if stored.outbox:
            await self.sessions.update_one(
                {"_id": stored.state.session_id, "version": stored.version},
                {"$set": {"outbox": []}},
            )
        return StoredSession(stored.state, stored.version, stored.processed_command_ids, ())
