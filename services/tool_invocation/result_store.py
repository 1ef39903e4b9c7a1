"""Kept results of tool-invocation (`tool_results`): the runtime's kept results
(services/runtime/kept_results.py) of RecordToolResult, by tool-call id, and the lease claims
(services/runtime/lease_claims.py) that guard a call while it runs.

This is what makes a redelivered ToolCallRequested harmless: a kept result is republished
instead of running the tool again; a call another owner holds is waited for.
"""

import asyncio
import time
from typing import Any, Final

from pydantic import TypeAdapter
from pymongo.asynchronous.database import AsyncDatabase

from contracts.turns import RecordToolResult
from services.runtime.kept_results import KeptResults, ResultIdentity
from services.runtime.lease_claims import ClaimMetrics, ClaimStore, Clock, LeaseClaims, Sleep
from services.tool_invocation import metrics

COLLECTION: Final = "tool_results"


def _identity(result: RecordToolResult) -> ResultIdentity:
    return ResultIdentity(
        result.tool_call_id, result.session_id, "error" if result.is_error else "ok"
    )


class KeptToolResults(KeptResults[RecordToolResult]):
    def __init__(
        self, database: AsyncDatabase[dict[str, Any]], collection: str = COLLECTION
    ) -> None:
        super().__init__(
            database, collection, adapter=TypeAdapter(RecordToolResult), identity=_identity
        )


class ToolCallClaims(LeaseClaims[RecordToolResult]):
    def __init__(
        self,
        store: ClaimStore[RecordToolResult],
        *,
        lease_s: float = 10.0,
        owner_prefix: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(
            store,
            metrics=ClaimMetrics(waits=metrics.CLAIM_WAITS, takeovers=metrics.CLAIM_TAKEOVERS),
            lease_s=lease_s,
            owner_prefix=owner_prefix,
            clock=clock,
            sleep=sleep,
        )
