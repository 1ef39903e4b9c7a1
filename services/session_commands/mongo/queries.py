"""The service's internal read side over its own documents (state included), for its tests.

Readers outside session-commands use `services.session_commands.read_model`. As there, every
query takes the tenant as a required keyword: a query without one does not type-check, and a
session of another tenant is answered like a missing one. Reads only; the writer is the handler. Listings use the summary fields copied to the top of
each session document, so a page never loads the state blobs.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.agents import AgentType
from contracts.read_model import HistoryMessage
from services.session_commands.domain.state import SessionState, SessionStatus
from services.session_commands.mongo.repository import MESSAGES, SESSIONS
from services.session_commands.mongo.session_document import Document, as_utc, history_message

MAX_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class SessionSummary:
    session_id: str
    tenant_id: str
    title: str
    status: SessionStatus
    current_agent: AgentType
    message_count: int
    created_at: datetime
    last_activity_at: datetime


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[SessionSummary]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[HistoryMessage]
    next_after_seq: int | None
    """Pass as `after_seq` for the next page (same order); None when this page was the last."""


class SessionQueries:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._sessions = database[SESSIONS]
        self._messages = database[MESSAGES]

    async def get_session(self, session_id: str, *, tenant_id: str) -> SessionState | None:
        """The session's state; None when it does not exist or belongs to another tenant."""
        document = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"state": 1}
        )
        return None if document is None else SessionState.model_validate(document["state"])

    async def list_sessions(
        self,
        *,
        tenant_id: str,
        active: bool | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> SessionPage:
        """Newest activity first. `active`: True = active only, False = closed or expired."""
        _check_paging(page, page_size)
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if active is True:
            query["status"] = SessionStatus.ACTIVE.value
        elif active is False:
            query["status"] = {"$in": [SessionStatus.CLOSED.value, SessionStatus.EXPIRED.value]}
        total = await self._sessions.count_documents(query)
        cursor = (
            self._sessions.find(query, _SUMMARY_FIELDS)
            .sort([("last_activity_at", DESCENDING), ("_id", ASCENDING)])
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        documents = await cursor.to_list(None)
        return SessionPage([_summary(d) for d in documents], page, page_size, total)

    async def history(
        self,
        session_id: str,
        *,
        tenant_id: str,
        limit: int = 50,
        newest_first: bool = False,
        after_seq: int | None = None,
    ) -> HistoryPage:
        """Messages by seq. `after_seq` continues a page in its own order: older-first pages
        go on with higher seqs, newest-first pages with lower ones. Another tenant's session
        has no messages."""
        _check_paging(1, limit)
        owner = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"_id": 1}
        )
        if owner is None:
            return HistoryPage([], None)
        query: dict[str, Any] = {"session_id": session_id}
        if after_seq is not None:
            query["seq"] = {"$lt" if newest_first else "$gt": after_seq}
        cursor = (
            self._messages.find(query)
            .sort("seq", DESCENDING if newest_first else ASCENDING)
            .limit(limit + 1)  # one more tells whether another page exists
        )
        documents = await cursor.to_list(None)
        messages = [history_message(d) for d in documents[:limit]]
        more = len(documents) > limit
        return HistoryPage(messages, messages[-1].seq if more and messages else None)


_SUMMARY_FIELDS = {
    "tenant_id": 1,
    "title": 1,
    "status": 1,
    "current_agent": 1,
    "message_count": 1,
    "created_at": 1,
    "last_activity_at": 1,
}


def _check_paging(page: int, page_size: int) -> None:
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page >= 1 and 1 <= page size <= {MAX_PAGE_SIZE} required")


def _summary(document: Document) -> SessionSummary:
    return SessionSummary(
        session_id=document["_id"],
        tenant_id=document["tenant_id"],
        title=document.get("title", ""),
        status=SessionStatus(document["status"]),
        current_agent=AgentType(document["current_agent"]),
        message_count=int(document.get("message_count", 0)),
        created_at=as_utc(document["created_at"]),
        last_activity_at=as_utc(document["last_activity_at"]),
    )
