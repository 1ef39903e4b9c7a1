"""The public read side of session-commands: tenant-scoped queries returning the read model.

Every query takes the tenant, and a session of another tenant is answered exactly like a
missing one (None), so no reader can learn that it exists. The results are the versioned
contract in `contracts/read_model.py`, never `SessionState` or raw documents: the writer may
reshape its documents without breaking readers. Reads only; the writer is the handler.
"""

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.agents import AgentType, MessageRole
from contracts.limits import MAX_AGENT_SWITCHES
from contracts.read_model import (
    MAX_PAGE_SIZE,
    AgentContext,
    AgentSwitchView,
    AwaitedToolCall,
    HistoryMessage,
    HistoryPage,
    SessionPage,
    SessionStatus,
    SessionSummary,
    SessionView,
)
from contracts.session_events import RejectionReason
from contracts.tools import CLIENT
from services.runtime.json_text import parse_json
from services.session_commands.domain.cancellation import turn_id_of
from services.session_commands.domain.state import Approval, SessionState
from services.session_commands.mongo.repository import MESSAGES, SESSIONS
from services.session_commands.mongo.session_document import Document, as_utc, history_message

_SUMMARY_FIELDS = {
    "tenant_id": 1,
    "title": 1,
    "status": 1,
    "current_agent": 1,
    "message_count": 1,
    "created_at": 1,
    "last_activity_at": 1,
}

# `Document` is the database handle type a reader passes in (read_model is the only public door).
__all__ = ["Document", "SessionReadModel"]


class SessionReadModel:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._sessions = database[SESSIONS]
        self._messages = database[MESSAGES]

    async def get_session(self, tenant_id: str, session_id: str) -> SessionView | None:
        loaded = await self._load(tenant_id, session_id)
        return None if loaded is None else _view(*loaded)

    async def exists(self, tenant_id: str, session_id: str) -> bool:
        """Whether the tenant has this session (in any status); reads the id only."""
        found = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"_id": 1}
        )
        return found is not None

    async def agent_context(self, tenant_id: str, session_id: str) -> AgentContext | None:
        loaded = await self._load(tenant_id, session_id)
        if loaded is None:
            return None
        state = loaded[0]
        return AgentContext(
            session_id=state.session_id,
            current_agent=state.current_agent,
            switch_history=[
                AgentSwitchView.model_validate(s.model_dump()) for s in state.switch_history
            ],
            switch_count=state.switch_count,
            switches_left=max(0, MAX_AGENT_SWITCHES - state.switch_count),
        )

    async def command_processed(self, tenant_id: str, session_id: str, command_id: str) -> bool:
        """Whether the session's writer applied (or remembered refusing) this command."""
        document = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id, "processed_command_ids": command_id},
            {"_id": 1},
        )
        return document is not None

    async def command_silent(self, tenant_id: str, session_id: str, command_id: str) -> bool:
        """Whether the session's writer applied this command and published no event for it
        (a switch to the current agent, a repeated erase or tool result): nothing will say so
        on `session-events`, so a caller waiting for its decision can stop waiting."""
        document = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id, "silent_command_ids": command_id},
            {"_id": 1},
        )
        return document is not None

    async def command_refusal(
        self, tenant_id: str, session_id: str, command_id: str
    ) -> RejectionReason | None:
        """Why the session's writer refused this command, if it did (among its last refusals):
        for a caller that did not see the refusal event."""
        document = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id, "refused_commands.id": command_id},
            {"refused_commands": 1},
        )
        for refusal in (document or {}).get("refused_commands", ()):
            if refusal.get("id") == command_id:
                return RejectionReason(refusal["reason"])
        return None

    async def list_sessions(
        self,
        tenant_id: str,
        *,
        status: SessionStatus | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> SessionPage:
        """Newest activity first; `status` filters (None = all)."""
        _check_limit(page_size)
        if page < 1:
            raise ValueError("page >= 1 required")
        query: dict[str, Any] = {"tenant_id": tenant_id}
        if status is not None:
            query["status"] = status.value
        total = await self._sessions.count_documents(query)
        cursor = (
            self._sessions.find(query, _SUMMARY_FIELDS)
            .sort([("last_activity_at", DESCENDING), ("_id", ASCENDING)])
            .skip((page - 1) * page_size)
            .limit(page_size)
        )
        documents = await cursor.to_list(None)
        return SessionPage(
            sessions=[_summary(d) for d in documents], page=page, page_size=page_size, total=total
        )

    async def history(
        self,
        tenant_id: str,
        session_id: str,
        *,
        limit: int = 50,
        newest_first: bool = False,
        cursor: int | None = None,
    ) -> HistoryPage | None:
        """Messages by seq; `cursor` continues a page in its own order (older-first pages go on
        with higher seqs, newest-first pages with lower ones). None: no such session."""
        _check_limit(limit)
        owner = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"_id": 1}
        )
        if owner is None:
            return None
        query: dict[str, Any] = {"session_id": session_id}
        if cursor is not None:
            query["seq"] = {"$lt" if newest_first else "$gt": cursor}
        found = (
            self._messages.find(query)
            .sort("seq", DESCENDING if newest_first else ASCENDING)
            .limit(limit + 1)  # one more tells whether another page exists
        )
        documents = await found.to_list(None)
        messages = [history_message(d) for d in documents[:limit]]
        more = len(documents) > limit
        return HistoryPage(
            messages=messages, next_cursor=messages[-1].seq if more and messages else None
        )

    async def message(
        self, tenant_id: str, session_id: str, message_id: str
    ) -> HistoryMessage | None:
        """One message by its id (the user's, or the assistant message of a turn)."""
        owner = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"_id": 1}
        )
        if owner is None:
            return None
        document = await self._messages.find_one(
            {"session_id": session_id, "message_id": message_id}
        )
        return None if document is None else history_message(document)

    async def turn_pending(self, tenant_id: str, session_id: str, turn_id: str) -> bool:
        """Whether this turn has yet to end: it runs (or is stopping after a cancel), or it is
        the turn a queued message will start. For a caller that missed the turn's first events
        (a keyed retry of a message applied before) and must know whether to wait for its end."""
        loaded = await self._load(tenant_id, session_id)
        if loaded is None:
            return False
        state = loaded[0]
        if state.turn is not None and state.turn.turn_id == turn_id:
            return True
        return any(turn_id_of(state, queued.message_id) == turn_id for queued in state.queue)

    async def awaited_tool_calls(self, tenant_id: str, session_id: str) -> list[AwaitedToolCall]:
        """The running turn's calls that wait for a client: approvals pending, and client
        tools without a result. [] for no session (of the tenant) or none waiting."""
        loaded = await self._load(tenant_id, session_id)
        turn = None if loaded is None else loaded[0].turn
        if turn is None or turn.tool_round is None:
            return []
        return [
            AwaitedToolCall(
                turn_id=turn.turn_id,
                tool_call_id=call.tool_call_id,
                tool=call.tool,
                agent=turn.agent,
                arguments=parse_json(call.arguments),
                runs_on=call.runs_on,
                awaiting_approval=call.approval is Approval.PENDING,
            )
            for call in turn.tool_round.calls
            if call.approval is Approval.PENDING or (call.runs_on == CLIENT and call.result is None)
        ]

    async def turn_answer(
        self, tenant_id: str, session_id: str, turn_id: str
    ) -> HistoryMessage | None:
        """The assistant message a turn kept (whole, or interrupted by a cancel), if any."""
        if not await self.exists(tenant_id, session_id):
            return None
        document = await self._messages.find_one(
            {"session_id": session_id, "turn_id": turn_id, "role": MessageRole.ASSISTANT.value}
        )
        return None if document is None else history_message(document)

    async def _load(self, tenant_id: str, session_id: str) -> tuple[SessionState, int] | None:
        document = await self._sessions.find_one(
            {"_id": session_id, "tenant_id": tenant_id}, {"state": 1, "version": 1}
        )
        if document is None:
            return None
        return SessionState.model_validate(document["state"]), int(document.get("version", 0))


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"1 <= page size <= {MAX_PAGE_SIZE} required")


def _view(state: SessionState, version: int) -> SessionView:
    return SessionView(
        session_id=state.session_id,
        title=state.title,
        description=state.description,
        system_prompt=state.system_prompt,
        metadata=state.metadata,
        status=SessionStatus(state.status.value),
        current_agent=state.current_agent,
        message_count=state.counters.messages,
        created_at=state.created_at,
        updated_at=state.updated_at,
        last_activity_at=state.last_activity_at,
        turn_in_flight=state.turn.turn_id if state.turn else None,
        queued_messages=len(state.queue),
        version=version,
        mid_turn_policy=state.mid_turn_policy,
    )


def _summary(document: Document) -> SessionSummary:
    return SessionSummary(
        session_id=document["_id"],
        title=document.get("title", ""),
        status=SessionStatus(document["status"]),
        current_agent=AgentType(document["current_agent"]),
        message_count=int(document.get("message_count", 0)),
        created_at=as_utc(document["created_at"]),
        last_activity_at=as_utc(document["last_activity_at"]),
    )
