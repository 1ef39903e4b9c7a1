"""A costly or unrepeatable call (an LLM invocation, a tool call) is claimed before it is made,
and the claim is a renewed lease. Users: llm-invocation (claims.py), tool-invocation.

Why: when a partition moves (scale-out, scale-in, a broker blip), its new owner receives
records whose call the old owner is still making; the revoke drain (10 s) is shorter than many
calls. Without a claim the new owner would make the same call again (pay twice, run a tool
twice). With it, the new owner waits until the old one keeps the result (then republishes it)
or stops renewing its lease (it crashed: only then is the call made again).

The lease is judged by the waiter's own monotonic clock, never by comparing wall clocks of two
machines: the holder increments `beat` every `lease_s / 3`; the claim has lapsed when the
waiter has seen the same beat for `lease_s` while MongoDB answered it promptly. A read that
took long (MongoDB was away, so the holder could not renew either) restarts the observation,
so an outage of the database never hands a live holder's call to someone else.

Owners are one per handler run (process + random suffix): a record re-run in the same process
while its earlier run still streams (a partition that came back) waits like any other owner.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client import Counter

from services.runtime.errors import RetryableError
from services.runtime.kept_results import Holder

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class ClaimStore(Protocol[R_co]):
    """`claim` / `read_claim` answer the kept result, the holder, or None (kept_results.py)."""

    async def claim(
        self, invocation_id: str, session_id: str, owner: str
    ) -> R_co | Holder | None: ...
    async def read_claim(self, invocation_id: str) -> R_co | Holder | None: ...
    async def take_over(self, invocation_id: str, owner: str, seen: Holder | None) -> bool: ...
    async def renew(self, invocation_id: str, owner: str) -> bool: ...
    async def release(self, invocation_id: str, owner: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ClaimMetrics:
    waits: Counter
    """Records whose call another owner held: waited for its result or its lease to lapse."""
    takeovers: Counter
    """Claims taken over after their lease lapsed."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """This handler run holds the call: it may make it."""

    invocation_id: str
    owner: str


def process_owner() -> str:
    """Names this process in claims (host/pid), for people reading the kept results."""
    return f"{socket.gethostname()}/{os.getpid()}"


class LeaseClaims(Generic[R]):
    def __init__(
        self,
        store: ClaimStore[R],
        *,
        metrics: ClaimMetrics,
        lease_s: float = 10.0,
        owner_prefix: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._lease_s = lease_s
        self._poll_s = min(1.0, lease_s / 10)
        self._prefix = owner_prefix or process_owner()
        self._clock = clock
        self._sleep = sleep

    @property
    def lease_s(self) -> float:
        return self._lease_s

    async def acquire(self, invocation_id: str, session_id: str) -> Claimed | R:
        """Claim the call, or the result kept for it; waits while another owner holds it.

        MongoDB errors raise RetryableError (the runtime re-runs the record, nothing was paid)."""
        owner = f"{self._prefix}#{uuid.uuid4().hex[:12]}"
        state = await self._store.claim(invocation_id, session_id, owner)
        seen: Holder | None = None
        since = 0.0
        waiting = False
        while True:
            if state is None:  # released by its holder, or deleted: claim it afresh
                state = await self._store.claim(invocation_id, session_id, owner)
                continue
            if not isinstance(state, Holder):  # a kept result
                return state
            if state.owner == owner:
                return Claimed(invocation_id, owner)
            now = self._clock()
            if not waiting:
                waiting = True
                self._metrics.waits.inc()
                log.info(
                    "call %s is held by %s: waiting for its result or its lease",
                    invocation_id,
                    state.owner,
                )
            if state != seen:
                seen, since = state, now
            elif now - since >= self._lease_s and await self._store.take_over(
                invocation_id, owner, seen
            ):
                self._metrics.takeovers.inc()
                log.warning(
                    "call %s: the lease of %s lapsed (no renewal for %.0f s); making it again",
                    invocation_id,
                    seen.owner,
                    now - since,
                )
                return Claimed(invocation_id, owner)
            await self._sleep(self._poll_s)
            asked = self._clock()
            state = await self._store.read_claim(invocation_id)
            if self._clock() - asked > self._lease_s / 3:
                seen = None  # MongoDB was slow or away, so was the holder's renewal: start over

    @contextlib.asynccontextmanager
    async def renewing(self, claimed: Claimed) -> AsyncIterator[None]:
        """Renew the lease while the body runs (the call and its durable steps)."""
        task = asyncio.create_task(self._renew(claimed), name=f"lease-{claimed.invocation_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def release(self, claimed: Claimed, timeout_s: float = 2.0) -> None:
        """Best effort, bounded: the next owner otherwise waits for the lease to lapse."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._store.release(claimed.invocation_id, claimed.owner)
        except (RetryableError, TimeoutError) as error:
            log.info("call %s: claim not released: %s", claimed.invocation_id, error)

    async def _renew(self, claimed: Claimed) -> None:
        interval = self._lease_s / 3
        while True:
            await self._sleep(interval)
            try:
                still_ours = await self._store.renew(claimed.invocation_id, claimed.owner)
            except RetryableError as error:
                # Try again soon: once MongoDB answers, the beat must move before a waiter's
                # observation (which restarts after the outage) reaches the lease.
                log.debug("call %s: lease not renewed: %s", claimed.invocation_id, error)
                interval = self._poll_s
                continue
            if not still_ours:
                log.warning(
                    "call %s: the claim was taken over; finishing the call anyway "
                    "(the first kept result wins)",
                    claimed.invocation_id,
                )
                return
            interval = self._lease_s / 3
