"""Erasure: a SessionErased on session-events deletes the session's kept tool results (the
tools' output may quote the user). Run by the same consumer as the calls: the deletion is a
durable effect, so the offset is committed only once the results are gone."""

import logging
from typing import Final

from contracts.codec import decode
from contracts.registry import type_name
from contracts.session_events import SessionErased
from contracts.topics import TopicName
from services.runtime import Record
from services.tool_invocation.result_store import KeptToolResults

log = logging.getLogger(__name__)

_ERASED_TYPE: Final = type_name(SessionErased).encode()


def is_erasure(record: Record) -> bool:
    return record.header("ce_type") == _ERASED_TYPE


class SessionErasure:
    def __init__(self, results: KeptToolResults) -> None:
        self._results = results

    async def __call__(self, record: Record) -> None:
        if not is_erasure(record):
            return
        erased = decode(record.value, record.headers, topic=TopicName.SESSION_EVENTS).message
        if not isinstance(erased, SessionErased):
            return
        deleted = await self._results.delete_session(erased.session_id)
        log.info(
            "kept tool results of an erased session deleted",
            extra={"session_id": erased.session_id, "deleted": deleted},
        )
