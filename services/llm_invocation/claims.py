"""An invocation is claimed before the provider is called, and the claim is a renewed lease:
the runtime's lease claims (services/runtime/lease_claims.py, where the why is) over the kept
LLM results, counted in llm-invocation's metrics."""

import asyncio
import time

from contracts.llm import LLMCompleted, LLMFailed
from services.llm_invocation import metrics
from services.runtime.lease_claims import (
    Claimed,
    ClaimMetrics,
    ClaimStore,
    Clock,
    LeaseClaims,
    Sleep,
    process_owner,
)

__all__ = ["ClaimStore", "Claimed", "InvocationClaims", "process_owner"]

_METRICS = ClaimMetrics(waits=metrics.CLAIM_WAITS, takeovers=metrics.CLAIM_TAKEOVERS)


class InvocationClaims(LeaseClaims[LLMCompleted | LLMFailed]):
    def __init__(
        self,
        store: ClaimStore[LLMCompleted | LLMFailed],
        *,
        lease_s: float = 10.0,
        owner_prefix: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(
            store,
            metrics=_METRICS,
            lease_s=lease_s,
            owner_prefix=owner_prefix,
            clock=clock,
            sleep=sleep,
        )
