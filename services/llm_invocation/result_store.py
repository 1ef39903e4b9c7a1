"""Kept results of llm-invocation (`llm_results`): the runtime's kept results
(services/runtime/kept_results.py) of LLMCompleted / LLMFailed, by invocation id.

This is what makes a redelivered LLMRequested free: a kept result is republished instead of
calling (and paying) the provider again.
"""

from typing import Any, Final

from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase

from contracts.llm import LLMCompleted, LLMFailed, LLMResult
from services.runtime.kept_results import Holder, ResultIdentity
from services.runtime.kept_results import KeptResults as KeptCallResults

COLLECTION: Final = "llm_results"

ClaimState = LLMCompleted | LLMFailed | Holder | None
"""A kept result, the claim's holder, or None: nobody holds it and nothing is kept."""

__all__ = ["COLLECTION", "ClaimState", "Holder", "KeptResults"]


def _identity(result: LLMCompleted | LLMFailed) -> ResultIdentity:
    return ResultIdentity(result.invocation_id, result.session_id, result.type)


class KeptResults(KeptCallResults[LLMCompleted | LLMFailed]):
    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], collection: str = COLLECTION
    ) -> None:
        super().__init__(
            database,
            collection,
            adapter=TypeAdapter(LLMResult),
            identity=_identity,
        )
