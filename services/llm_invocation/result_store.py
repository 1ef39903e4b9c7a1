"""Kept results (`llm_results`): the outcome of each invocation by invocation id.

This is what makes a redelivered LLMRequested free: the handler looks here first and
republishes the kept result instead of calling (and paying) the provider again. The first
result kept under an id wins (`_id` is the guard), so two owners racing during a rebalance
publish the same result. Bounded by the retention job (no TTL index: the Mongo-compatible test
server ignores them).
"""

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Final

from pydantic import TypeAdapter
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.base import utc_now
from contracts.llm import LLMCompleted, LLMFailed, LLMResult
from services.runtime.errors import RetryableError
from services.runtime.mongo_errors import database_outage

COLLECTION: Final = "llm_results"
_RESULT: TypeAdapter[LLMCompleted | LLMFailed] = TypeAdapter(LLMResult)


class KeptResults:
    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], collection: str = COLLECTION
    ) -> None:
        self._results: AsyncCollection[dict[str, Any]] = database[collection]

    async def ensure_indexes(self) -> None:
        """Idempotent; run at start-up. The retention job deletes by `kept_at`."""
        async with _kept_results():
            await self._results.create_index([("kept_at", ASCENDING)], name="kept_at")

    async def get(self, invocation_id: str) -> LLMCompleted | LLMFailed | None:
        async with _kept_results():
            document = await self._results.find_one({"_id": invocation_id})
        return None if document is None else _RESULT.validate_python(document["result"])

    async def keep(self, result: LLMCompleted | LLMFailed) -> LLMCompleted | LLMFailed:
        """Keep `result` unless one is kept already; returns the one that is kept."""
        document = {
            "_id": result.invocation_id,
            "session_id": result.session_id,
            "outcome": result.type,
            "result": result.model_dump(mode="json"),
            "kept_at": utc_now(),
        }
        try:
            async with _kept_results():
                await self._results.insert_one(document)
        except DuplicateKeyError:
            kept = await self.get(result.invocation_id)
            if kept is None:  # deleted by retention between the two calls: keep ours
                raise RetryableError(f"kept result {result.invocation_id} vanished") from None
            return kept
        return result

    async def delete_kept_before(self, cutoff: datetime) -> int:
        async with _kept_results():
            outcome = await self._results.delete_many({"kept_at": {"$lt": cutoff}})
        return outcome.deleted_count


def _kept_results() -> AbstractAsyncContextManager[None]:
    return database_outage("kept results (MongoDB)")
