"""The session store in memory, for handler tests. `SessionStoreContract` (store_contract.py)
holds it to the same behaviour as the Mongo repository."""

from collections.abc import Sequence
from dataclasses import replace

from contracts.codec import EncodedRecord
from contracts.session_events import SessionEvent
from services.session_commands.domain.state import SessionState
from services.session_commands.mongo.group_commit import ConcurrentWriteError
from services.session_commands.mongo.session_document import (
    StoredSession,
    refused_commands,
    silent_command_ids,
)


class MemoryStore:
    def __init__(self) -> None:
        self.documents: dict[str, StoredSession] = {}
        self.writes = 0
        self.conflict_next = False  # test hook: the next save loses a race

    async def load(self, session_id: str) -> StoredSession | None:
        return self.documents.get(session_id)

    async def save(
        self,
        previous: StoredSession | None,
        state: SessionState,
        events: Sequence[SessionEvent],
        outbox: Sequence[EncodedRecord],
        command_id: str,
    ) -> StoredSession:
        version = (previous.version if previous else 0) + 1
        seen = previous.processed_command_ids if previous else ()
        processed = (*seen, command_id)
        silent = silent_command_ids(previous, processed, command_id, published=bool(events))
        refused = refused_commands(previous, command_id, events)
        stored = StoredSession(state, version, processed, tuple(outbox), silent, refused)
        current = self.documents.get(state.session_id)
        if self.conflict_next:
            self.conflict_next = False
            raise ConcurrentWriteError("moved on")
        if current is not None and current.version != version - 1:
            # Like the repository: the same command from the same version wrote the same
            # decision (a zombie owner, a raced redelivery), so it counts as written.
            if current.version == version and current.processed_command_ids[-1:] == (command_id,):
                return stored
            raise ConcurrentWriteError(f"session {state.session_id} was written meanwhile")
        self.documents[state.session_id] = stored
        self.writes += 1
        return stored

    async def clear_outbox(self, stored: StoredSession) -> StoredSession:
        cleared = replace(stored, outbox=())
        if self.documents[stored.state.session_id].version == stored.version:
            self.documents[stored.state.session_id] = cleared
        return cleared
