"""Erasure of kept results: a SessionErased on session-events deletes the session's kept
results (an LLM's answers, a tool's output: either may quote the user).

The deletion is a durable effect: the consumer that runs it commits the offset only once the
results are gone, and a crash before that reads the fact again (deleting again deletes nothing
more). Other facts are told apart by their `ce_type` header without decoding (`is_erasure`, for
a consumer's `accepts`)."""

import logging
from typing import Any, Final

from contracts.codec import decode
from contracts.registry import type_name
from contracts.session_events import SessionErased
from contracts.topics import TopicName
from services.runtime.kept_results import KeptResults
from services.runtime.record import Record

log = logging.getLogger(__name__)

_ERASED_TYPE: Final = type_name(SessionErased).encode()


def is_erasure(record: Record) -> bool:
    return record.header("ce_type") == _ERASED_TYPE


def is_erasure_header(name: str, value: bytes) -> bool:
    """`is_erasure` on one raw header: for a reader of raw records (the gateway's feed)."""
    return name == "ce_type" and value == _ERASED_TYPE


class KeptResultsErasure:
    def __init__(self, results: KeptResults[Any], kind: str) -> None:
        self._results = results
        self._kind = kind
        """What is kept, for the log line: `LLM`, `tool`."""

    async def __call__(self, record: Record) -> None:
        if not is_erasure(record):
            return
        erased = decode(record.value, record.headers, topic=TopicName.SESSION_EVENTS).message
        if not isinstance(erased, SessionErased):
            return
        deleted = await self._results.delete_session(erased.session_id)
        log.info(
            "kept %s results of an erased session deleted",
            self._kind,
            extra={"session_id": erased.session_id, "deleted": deleted},
        )
