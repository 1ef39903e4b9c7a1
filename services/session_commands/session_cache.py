"""The sessions this instance wrote or read recently, so a command needs no read first.

Safe without invalidation on rebalance because it is trusted only where a compare-and-set will
check it: a decision that writes fails on a stale version (then the entry is dropped and the
command retried from the database), and a decision that would not write is re-taken on a fresh
read (handler.py). Bounded: least recently used entries go first.
"""

from collections import OrderedDict

from services.session_commands.mongo.session_document import StoredSession


class SessionCache:
    def __init__(self, capacity: int = 2_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, StoredSession] = OrderedDict()

    def get(self, session_id: str) -> StoredSession | None:
        stored = self._entries.get(session_id)
        if stored is not None:
            self._entries.move_to_end(session_id)
        return stored

    def put(self, stored: StoredSession) -> None:
        if self._capacity <= 0:
            return
        self._entries[stored.state.session_id] = stored
        self._entries.move_to_end(stored.state.session_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def drop(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)
