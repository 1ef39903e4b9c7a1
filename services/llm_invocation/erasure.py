"""Erasure: a SessionErased on session-events deletes the session's kept LLM results.

A consumer group of its own (`llm_erasure_consumer_group`), unlike the session watcher: the
deletion is a durable effect, so its offset is committed only once the results are gone, and
a crash before that reads the fact again (deleting again deletes nothing more). Other facts
are told apart by their `ce_type` header and skipped without decoding: by the runtime, before
any handler call (`concerns`, the consumer's `accepts`).
"""

import logging

from contracts.codec import decode
from contracts.registry import type_name
from contracts.session_events import SessionErased
from contracts.topics import TopicName
from services.llm_invocation.result_store import KeptResults
from services.runtime import Record

log = logging.getLogger(__name__)

_ERASED_TYPE = type_name(SessionErased).encode()


def concerns(record: Record) -> bool:
    """Only erasures: the other session facts (four per turn) need no handler call."""
    return record.header("ce_type") == _ERASED_TYPE


class SessionErasure:
    def __init__(self, results: KeptResults) -> None:
        self._results = results

    async def __call__(self, record: Record) -> None:
        if not concerns(record):
            return
        erased = decode(record.value, record.headers, topic=TopicName.SESSION_EVENTS).message
        if not isinstance(erased, SessionErased):
            return
        deleted = await self._results.delete_session(erased.session_id)
        log.info(
            "kept LLM results of an erased session deleted",
            extra={"session_id": erased.session_id, "deleted": deleted},
        )
