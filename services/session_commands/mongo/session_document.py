"""The two document shapes in MongoDB: one bounded document per session, one per message.

`sessions` (one document per session, bounded):

    _id                    session id
    version                compare-and-set guard, +1 per write
    state                  SessionState as JSON (bounded: see state.py)
    processed_command_ids  the last N command ids applied (idempotency window)
    silent_command_ids     those of them that published no event (a switch to the current
                           agent, an erase or a tool result repeated): a waiting caller (the
                           gateway) learns from here that no decision event will come
    refused_commands       the last `MAX_REFUSALS_KEPT` of them refused, {id, reason}: a
                           caller that missed the refusal event (the gateway answering a
                           keyed retry) learns from here what it was
    outbox                 encoded records of the last command, until published
    tenant_id, status, title, current_agent, message_count,
    created_at, updated_at, last_activity_at, expired_at
                           copies of state fields, for indexes and session listings
    tool_deadline          the deadline of the tool round the turn awaits, else null (the
                           tool deadline job, expiry.py)

`messages` (one document per message, unique on (session_id, seq); `_id` is derived from the
same pair, so a re-insert is a duplicate-key no-op on any Mongo-compatible server). An erased
session's messages keep ids, seq, role, agent and times; `ERASED_MESSAGE` replaces the rest.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.agents import AgentType, MessageRole
from contracts.codec import EncodedRecord
from contracts.read_model import HistoryMessage
from contracts.session_events import (
    AssistantMessageAppended,
    CommandRejected,
    SessionEvent,
    UserMessageAccepted,
)
from services.session_commands.domain.state import SessionState, SessionStatus

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredSession:
    state: SessionState
    version: int
    processed_command_ids: tuple[str, ...]
    outbox: tuple[EncodedRecord, ...]
    silent_command_ids: tuple[str, ...] = ()
    refused_commands: tuple[tuple[str, str], ...] = ()
    """(command id, RejectionReason value) of the last refused commands."""

    def has_processed(self, command_id: str) -> bool:
        return command_id in self.processed_command_ids


def silent_command_ids(
    previous: StoredSession | None,
    processed: Sequence[str],
    command_id: str,
    *,
    published: bool,
) -> tuple[str, ...]:
    """The silent ids after recording `command_id`: it joins them when it published nothing;
    ids that left the processed window leave this list too, so it stays as bounded."""
    seen = previous.silent_command_ids if previous is not None else ()
    added = () if published else (command_id,)
    if not seen:
        return added  # most writes: no set of up to 1,000 processed ids built for nothing
    window = set(processed)
    return tuple(i for i in (*seen, *added) if i in window)


MAX_REFUSALS_KEPT = 50
"""A keyed retry comes soon after its request: the last refusals are enough, and each write
of the session rewrites the list."""


def refused_commands(
    previous: StoredSession | None, command_id: str, events: Sequence[SessionEvent]
) -> tuple[tuple[str, str], ...]:
    """The refusals after recording `command_id`: its own joins them if it was refused."""
    seen = previous.refused_commands if previous is not None else ()
    added = tuple(
        (command_id, event.reason.value)
        for event in events
        if isinstance(event, CommandRejected) and event.rejected_command_id == command_id
    )[:1]
    return (*seen, *added)[-MAX_REFUSALS_KEPT:]


def session_document(
    state: SessionState,
    version: int,
    processed_command_ids: Sequence[str],
    outbox: Sequence[EncodedRecord],
    silent_command_ids: Sequence[str] = (),
    refused: Sequence[tuple[str, str]] = (),
) -> Document:
    return {
        "_id": state.session_id,
        "version": version,
        "state": state.model_dump(mode="json"),
        "processed_command_ids": list(processed_command_ids),
        "silent_command_ids": list(silent_command_ids),
        "refused_commands": [{"id": i, "reason": reason} for i, reason in refused],
        "outbox": [outbox_entry(record) for record in outbox],
        "tenant_id": state.tenant_id,
        "status": state.status.value,
        "title": state.title,
        "current_agent": state.current_agent.value,
        "message_count": state.counters.messages,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "last_activity_at": state.last_activity_at,
        "expired_at": state.updated_at if state.status is SessionStatus.EXPIRED else None,
        "tool_deadline": _tool_deadline(state),
    }


def _tool_deadline(state: SessionState) -> datetime | None:
    round_ = state.turn.tool_round if state.turn is not None else None
    return round_.deadline if round_ is not None else None


def stored_session(document: Document) -> StoredSession:
    return StoredSession(
        state=SessionState.model_validate(document["state"]),
        version=int(document["version"]),
        processed_command_ids=tuple(document.get("processed_command_ids", ())),
        outbox=tuple(outbox_record(entry) for entry in document.get("outbox", ())),
        silent_command_ids=tuple(document.get("silent_command_ids", ())),
        refused_commands=tuple(
            (str(r["id"]), str(r["reason"])) for r in document.get("refused_commands", ())
        ),
    )


def outbox_entry(record: EncodedRecord) -> Document:
    # `bytes` is stored as BSON binary (subtype 0), as `Binary(...)` would be, without a
    # Python-level wrapper per header (it was ~4% of session-commands' CPU).
    return {
        "key": record.key,
        "value": record.value,
        "headers": [[name, value] for name, value in record.headers],
    }


def outbox_record(entry: Document) -> EncodedRecord:
    return EncodedRecord(
        key=bytes(entry["key"]),
        value=bytes(entry["value"]),
        headers=[(str(name), bytes(value)) for name, value in entry["headers"]],
    )


def as_utc(moment: datetime) -> datetime:
    """BSON dates carry no zone; a client without `tz_aware=True` hands back naive UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


ERASED_MESSAGE: dict[str, Any] = {"content": "", "author_name": None, "erased": True}
"""What erasure sets on every message of the session (EraseSession)."""


def message_id(session_id: str, seq: int) -> str:
    # Ids never contain '#' (contracts.base.ID_PATTERN), so the pair maps to one _id only.
    return f"{session_id}#{seq}"


def message_documents(events: Iterable[SessionEvent]) -> list[Document]:
    """The history entries a decision adds: one per accepted user or assistant message."""
    documents: list[Document] = []
    for event in events:
        if isinstance(event, UserMessageAccepted):
            documents.append(
                _message(event, event.seq, MessageRole.USER, event.message_id, event.content)
                | {"author_name": event.author_name}
            )
        elif isinstance(event, AssistantMessageAppended):
            documents.append(
                _message(event, event.seq, MessageRole.ASSISTANT, event.message_id, event.content)
                | {"agent": event.agent.value, "turn_id": event.turn_id}
                | ({"interrupted": True} if event.interrupted else {})
            )
    return documents


def _message(
    event: SessionEvent, seq: int, role: MessageRole, message_id_: str, content: str
) -> Document:
    created_at: datetime = event.occurred_at
    return {
        "_id": message_id(event.session_id, seq),
        "session_id": event.session_id,
        "seq": seq,
        "tenant_id": event.tenant_id,
        "message_id": message_id_,
        "role": role.value,
        "content": content,
        "author_name": None,
        "agent": None,
        "turn_id": None,
        "event_id": event.id,
        "created_at": created_at,
    }


def history_message(document: Document) -> HistoryMessage:
    """A `messages` document as the contract's history message (the one mapping)."""
    agent = document.get("agent")
    return HistoryMessage(
        seq=int(document["seq"]),
        message_id=document["message_id"],
        role=MessageRole(document["role"]),
        content=document["content"],
        author_name=document.get("author_name"),
        agent=AgentType(agent) if agent else None,
        turn_id=document.get("turn_id"),
        created_at=as_utc(document["created_at"]),
        interrupted=bool(document.get("interrupted", False)),
    )
