"""ToolCallRequested (runs_on `mcp:<server>`) → (kept result | claim → tool call) → keep →
RecordToolResult on `turns`. Thin: the call's protections are in tool_caller.py.

Order of effects, for at-least-once delivery without running a tool twice:
1. claim the tool-call id in the kept results (services/runtime/lease_claims.py): a kept result
   → republish it, done (the tool does not run); another owner's live claim → wait for its
   result or for its lease to lapse (it crashed: only then does the tool run again);
2. call the tool, renewing the claim's lease; a watcher stops the call when its turn or session
   ends (running_calls.py): then a `cancelled` result is kept and nothing is published (the
   turn takes no result any more);
3. the durable steps, with the result in hand: kept in Mongo (acknowledged write), then
   published to `turns` (acks=all). An outage here is retried here, never by re-running the
   record: that would run the tool again although its result is in memory.
The offset is committed only after step 3 returns. A crash during 2 runs the tool again once
the lease lapsed — the only case of a second execution; a crash between keeping and
publishing republishes the kept result.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from contracts.base import Message, derive_id, utc_now
from contracts.codec import decode, encode
from contracts.registry import type_name
from contracts.session_events import ToolCallRequested
from contracts.tools import MCP_PREFIX
from contracts.topics import Service, TopicName
from contracts.turns import RecordToolResult
from services.runtime import Record, RetryableError, bind_log_context, current_traceparent
from services.runtime.cancelled_turns import CancelledTurns
from services.runtime.lease_claims import Claimed
from services.runtime.publishing import Publish
from services.runtime.retry import Backoff
from services.tool_invocation import metrics
from services.tool_invocation.result_store import KeptToolResults, ToolCallClaims
from services.tool_invocation.running_calls import RunningCalls
from services.tool_invocation.tool_caller import ToolCaller, ToolOutcome, truncated

log = logging.getLogger(__name__)

SOURCE: Final = Service.TOOL_INVOCATION.value
_REQUESTED_TYPE: Final = type_name(ToolCallRequested).encode()


def is_tool_call_request(record: Record) -> bool:
    return record.header("ce_type") == _REQUESTED_TYPE


CANCELLED: Final = "cancelled"
DEADLINE_EXCEEDED: Final = "deadline_exceeded"

DURABLE_STEPS_BACKOFF = Backoff(initial_s=0.1, max_s=5.0)
ENDED_TURNS_KEPT: Final = 20_000
"""Ended turns remembered (the newest; about 10 MB): every turn ends, so this covers the
cancellation lookback (600 s) up to ~30 turns/s per process. A call of an ended turn forgotten
here runs as before the window existed; its result is taken by nobody.
"""


@dataclass(frozen=True, slots=True)
class _Causation:
    correlation_id: str
    causation_id: str
    traceparent: str | None


class ToolCallHandler:
    def __init__(
        self,
        *,
        caller: ToolCaller,
        results: KeptToolResults,
        claims: ToolCallClaims,
        publish: Publish,
        turns_topic: str,
        running: RunningCalls | None = None,
        cancelled: CancelledTurns | None = None,
        ended: CancelledTurns | None = None,
        durable_steps_backoff: Backoff = DURABLE_STEPS_BACKOFF,
    ) -> None:
        self._caller = caller
        self._results = results
        self._claims = claims
        self._publish = publish
        self._turns_topic = turns_topic
        self.running = running or RunningCalls()
        self.cancelled = cancelled if cancelled is not None else CancelledTurns()
        self.ended = ended if ended is not None else CancelledTurns(ENDED_TURNS_KEPT)
        self._backoff = durable_steps_backoff

    async def __call__(self, record: Record) -> None:
        """Answer one `mcp:` ToolCallRequested with exactly one kept RecordToolResult."""
        if not is_tool_call_request(record):
            return  # every other session fact: not ours (the watcher sees the cancellations)
        decoded = decode(record.value, record.headers, topic=TopicName.SESSION_EVENTS)
        request = decoded.message
        if not isinstance(request, ToolCallRequested):
            raise TypeError(
                f"ce_type says tool.call_requested, the body is {type(request).__name__}"
            )
        if not request.runs_on.startswith(MCP_PREFIX):
            return  # a client tool: the upstream answers it
        bind_log_context(turn_id=request.turn_id, tool_call_id=request.tool_call_id)
        causation = _Causation(
            correlation_id=decoded.envelope.chain_correlation_id(request.id),
            causation_id=request.id,
            traceparent=current_traceparent() or decoded.envelope.traceparent,
        )
        ended = self._turn_over(request.turn_id)
        if ended is not None:
            log.info("tool call %s not run: its turn is over (%s)", request.tool_call_id, ended)
            return
        claimed = await self._claims.acquire(request.tool_call_id, request.session_id)
        if not isinstance(claimed, Claimed):
            metrics.REPLAYED.inc()
            await self._send(claimed, causation)
            return
        try:
            async with self._claims.renewing(claimed):
                outcome, stopped = await self._run(request)
                result = self._result(request, outcome)
                await self._make_durable(result, causation, publish=stopped is None)
        except BaseException:
            # Shutdown (cancelled) or a bug (dead letter): nothing kept, let the next owner in.
            await self._claims.release(claimed)
            raise

    async def _run(self, request: ToolCallRequested) -> tuple[ToolOutcome, str | None]:
        remaining_s = (request.deadline - utc_now()).total_seconds()
        if remaining_s <= 0:
            return ToolOutcome(
                f"not run: its deadline ({request.deadline.isoformat()}) had passed",
                True,
                DEADLINE_EXCEEDED,
                0,
            ), None
        server = request.runs_on.removeprefix(MCP_PREFIX)
        # A task of its own, so that stopping it (running.on_fact) is told apart from the
        # cancellation of this handler at shutdown, which must propagate.
        task = asyncio.create_task(
            self._caller.call(
                server,
                request.tool,
                request.arguments,
                idempotent=request.idempotent,
                deadline_s=remaining_s,
            ),
            name=f"tool-{request.tool_call_id}",
        )
        call = self.running.register(
            request.session_id, request.turn_id, request.tool_call_id, task
        )
        ended = self._turn_over(request.turn_id)
        if ended is not None:
            # The turn ended while the call was being claimed (or waited for another owner's
            # lease): the watcher stopped nothing, since nothing was registered yet. The task
            # has not started, so the tool does not run.
            call.stopped = ended
            task.cancel()
        try:
            try:
                return await task, None
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if call.stopped is None or (current is not None and current.cancelling()):
                    raise
                return ToolOutcome(f"stopped: {call.stopped}", True, CANCELLED, 1), call.stopped
        finally:
            self.running.finish(call)

    def _turn_over(self, turn_id: str) -> str | None:
        """Why the turn takes no result any more (cancelled, or ended), as the watcher saw."""
        return self.cancelled.reason(turn_id) or self.ended.reason(turn_id)

    def _result(self, request: ToolCallRequested, outcome: ToolOutcome) -> RecordToolResult:
        content = outcome.content
        if outcome.error_class is not None:
            # What the model reads: the failure's class first, so it can decide to try again.
            content = f"{outcome.error_class}: {content}"
        return RecordToolResult(
            id=derive_id("tool-result", request.tool_call_id),
            session_id=request.session_id,
            tenant_id=request.tenant_id,
            turn_id=request.turn_id,
            tool_call_id=request.tool_call_id,
            # A failure's message may be long too (a server's JSON-RPC error message).
            content=truncated(content, self._caller.max_content_chars),
            is_error=outcome.is_error,
            source=request.runs_on,
        )

    async def _make_durable(
        self, result: RecordToolResult, causation: _Causation, *, publish: bool
    ) -> None:
        """Result kept, then published: retried until done (shutdown cancels the wait)."""
        kept: RecordToolResult | None = None
        attempt = 0
        while True:
            try:
                if kept is None:
                    kept = await self._results.keep(result)
                if publish:
                    await self._send(kept, causation)
            except RetryableError as error:
                attempt += 1
                delay = self._backoff.delay(attempt)
                log.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,
                    "tool call %s finished; its durable steps failed (attempt %d), retrying in "
                    "%.1f s without running the tool again: %s",
                    result.tool_call_id,
                    attempt,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                continue
            return

    async def _send(self, message: Message, causation: _Causation) -> None:
        encoded = encode(
            message,
            source=SOURCE,
            correlation_id=causation.correlation_id,
            causation_id=causation.causation_id,
            traceparent=causation.traceparent,
        )
        await self._publish(self._turns_topic, encoded)
