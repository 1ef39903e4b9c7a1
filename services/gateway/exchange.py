"""The write path: publish a command, wait for session-commands' decision, map refusals.

A write answers only once the session's writer decided (or `decision_timeout_s` passed): a
refusal becomes its problem (409 for a closed session…), and an acceptance is already stored,
because session-commands publishes its events after the MongoDB write. So a client that got
a 2xx and then reads sees its write (read-your-writes), on any replica.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from pymongo.errors import PyMongoError

from contracts.commands import Command, CreateSession, SubmitUserMessage
from contracts.session_events import CommandRejected, RejectionReason, SessionEvent
from services.gateway.command_publisher import BrokerUnavailable, CommandPublisher
from services.gateway.event_feed import SessionEventFeed, Watch
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.rejections import problem_for_rejection
from services.session_commands.read_model import SessionReadModel

log = logging.getLogger(__name__)

NO_SUCH_SESSION = "no such session"

_FIRST_SILENT_CHECK_S = 0.1
"""A decision normally arrives well within this, so most writes never read the store."""
_MAX_SILENT_CHECK_S = 1.0
_ALWAYS_ANSWERED: Final = (SubmitUserMessage, CreateSession)
"""Commands the session's writer answers with an event whenever it applies or refuses them."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the HTTP request came from, carried into the command's CloudEvents headers."""

    tenant_id: str
    request_id: str
    traceparent: str | None
    tracestate: str | None = None
    keyed: bool = False
    """The command id comes from an `Idempotency-Key`: the command may have been applied by
    an earlier request whose answer was `pending`."""


@dataclass(slots=True)
class Submitted:
    command: Command
    decision: SessionEvent | None
    """The first event of the command; None: not decided within the wait."""
    applied_silently: bool
    """Processed without an event (a no-op, or a retry of a command already applied)."""
    watch: Watch

    async def until(self, deadline: float) -> SessionEvent | None:
        """The next event of the watched turn before `deadline` (monotonic), else None."""
        return await self.watch.next(deadline - time.monotonic())


class Exchange:
    def __init__(
        self,
        feed: SessionEventFeed,
        publisher: CommandPublisher,
        read_model: SessionReadModel,
        *,
        decision_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._feed = feed
        self._publisher = publisher
        self._read_model = read_model
        self._decision_timeout_s = decision_timeout_s
        self._retry_after_s = retry_after_s

    def unavailable(self, detail: str) -> ApiProblem:
        return ApiProblem(
            ProblemCode.BROKER_UNAVAILABLE,
            detail,
            headers={"Retry-After": str(self._retry_after_s)},
        )

    @asynccontextmanager
    async def submit(
        self,
        command: Command,
        origin: Origin,
        *,
        turn_id: str | None = None,
        wait_for_decision: bool = True,
        creating: bool = False,
    ) -> AsyncIterator[Submitted]:
        if not self._feed.ready:
            raise self.unavailable("the gateway is not connected to the broker yet")
        with self._feed.watch(command.session_id, command_id=command.id, turn_id=turn_id) as w:
            if origin.keyed and await self._processed_before(origin.tenant_id, command, creating):
                # Applied already: published again, it would be dropped as a redelivery and
                # no event would come, so the answer would wait out the whole timeout.
                yield Submitted(command, None, True, w)
                return
            try:
                await self._publisher.publish(
                    command,
                    correlation_id=origin.request_id,
                    traceparent=origin.traceparent,
                    tracestate=origin.tracestate,
                )
            except BrokerUnavailable as error:
                # The broker's addresses and the driver's error are for the operator's log, not
                # for a client (a problem's detail never names the deployment's internals).
                log.warning("command %s not acknowledged: %s", command.id, error)
                raise self.unavailable(
                    "the command was not acknowledged in time; it may still be applied: "
                    "retry with the same Idempotency-Key"
                ) from None
            decision, silently = (
                await self._decision(w, origin.tenant_id, command, creating)
                if wait_for_decision
                else (None, False)
            )
            if isinstance(decision, CommandRejected):
                raise self._refusal(decision.reason, decision.detail, command, creating)
            yield Submitted(command, decision, silently, w)

    def _refusal(
        self, reason: RejectionReason, detail: str | None, command: Command, creating: bool
    ) -> ApiProblem:
        code = problem_for_rejection(reason, creating=creating)
        # One text for a missing and another tenant's session: nothing tells them apart.
        if code is ProblemCode.SESSION_NOT_FOUND:
            detail = NO_SUCH_SESSION
        # A full queue drains as the running turn ends: worth retrying, so say when.
        retry = {"Retry-After": str(self._retry_after_s)} if code is ProblemCode.QUEUE_FULL else {}
        return ApiProblem(code, detail, headers=retry, command_id=command.id)

    async def _processed_before(self, tenant_id: str, command: Command, creating: bool) -> bool:
        """Whether the session's writer applied this command already; raises its problem if it
        refused it (the session document keeps its last refusals' reasons, not their text)."""
        if not await self._read_model.command_processed(tenant_id, command.session_id, command.id):
            return False
        reason = await self._read_model.command_refusal(tenant_id, command.session_id, command.id)
        if reason is not None:
            raise self._refusal(reason, None, command, creating)
        return True

    async def _decision(
        self, watch: Watch, tenant_id: str, command: Command, creating: bool
    ) -> tuple[SessionEvent | None, bool]:
        """(the command's first event, or None; whether it was applied without one).

        A command the writer applies without an event (a switch to the current agent, an
        erase or a tool result repeated) has no decision to wait for: the session document
        lists it among its silent commands, so the wait looks there now and then instead of
        lasting the whole timeout. A message or a create always gets an event (under a new
        command id: a keyed retry is found before publishing, in `submit`), so their wait,
        the hot path, never reads the store. One whose decision this replica missed is found
        among the processed ids once the time is up.

        The command is published by then: a failed read of the store is no answer, the wait
        goes on (the caller would resend a command that may be applied, as a new one)."""
        deadline = time.monotonic() + self._decision_timeout_s
        pause = _FIRST_SILENT_CHECK_S
        silent_possible = not isinstance(command, _ALWAYS_ANSWERED)
        while silent_possible and deadline - time.monotonic() > pause:
            event = await watch.next(pause)
            if event is not None:
                return event, False
            if await self._read_quietly(
                self._read_model.command_silent(tenant_id, command.session_id, command.id)
            ):
                return None, True
            pause = min(pause * 2, _MAX_SILENT_CHECK_S)
        event = await watch.next(max(0.0, deadline - time.monotonic()))
        if event is not None:
            return event, False
        return None, await self._read_quietly(self._processed_before(tenant_id, command, creating))

    @staticmethod
    async def _read_quietly(read: Awaitable[bool]) -> bool:
        try:
            return await read
        except PyMongoError as error:
            log.warning("decision wait: the session store did not answer: %s", error)
            return False
