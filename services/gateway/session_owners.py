"""Which tenant owns a session, remembered for a short while: the tenant check of stream opens.

Opening a live stream first checks that the caller's tenant has the session (404 otherwise,
exactly like a missing one). When many clients open at once (every stream of a replica
reconnecting after a `reader_restarted` drop, or several tabs of one session), that is one
read of the session store per open. A session's tenant never changes while it exists, so a
found owner is remembered for `ttl_s` in a map of at most `max_sessions` entries (the oldest
go first): a repeated open of a session, by its tenant or by another, reads nothing.

Only found sessions are remembered: a session created a moment ago is read again until it
exists (read-your-writes), a missing one is read every time. Closed, expired and erased
sessions keep their document, so they answer as before (their stream opens). The one
difference: for at most `ttl_s` after the retention job purged a session, a stream of it
still opens for its tenant (and stays silent) instead of answering 404.
"""

import time
from collections.abc import Callable
from typing import Protocol

from cachetools import TTLCache


class SessionDirectory(Protocol):
    """The read model's existence query (`SessionReadModel.exists`)."""

    async def exists(self, tenant_id: str, session_id: str) -> bool: ...


class SessionOwners:
    def __init__(
        self,
        read_model: SessionDirectory,
        *,
        ttl_s: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_model = read_model
        self._owners: TTLCache[str, str] = TTLCache(maxsize=max_sessions, ttl=ttl_s, timer=clock)

    async def owns(self, tenant_id: str, session_id: str) -> bool:
        owner = self._owners.get(session_id)
        if owner is not None:
            return owner == tenant_id
        if not await self._read_model.exists(tenant_id, session_id):
            return False
        self._owners[session_id] = tenant_id
        return True
