"""Messages: submit (202, or 200 with the answer under `Prefer: wait=N`), history by seq cursor."""

import re
import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from contracts.agents import MessageRole
from contracts.base import derive_id
from contracts.commands import SubmitUserMessage
from contracts.read_model import MAX_PAGE_SIZE, HistoryMessage, HistoryPage
from contracts.session_events import (
    AssistantMessageAppended,
    SessionClosed,
    SessionErased,
    SessionEvent,
    SessionExpired,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStopped,
    UserMessageAccepted,
)
from services.gateway.context import (
    Caller,
    CallerDep,
    IdempotencyKey,
    Reply,
    respond_once,
    session_id_or_404,
)
from services.gateway.event_feed import SESSION_ENDS
from services.gateway.exchange import NO_SUCH_SESSION, Submitted
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.routes.responses import problems
from services.gateway.schemas import (
    MessageLinks,
    MessageReceipt,
    MessageStatus,
    SubmitMessageRequest,
    TurnFailure,
)

router = APIRouter(prefix="/v1/sessions", tags=["messages"])

# RFC 7240: a preference's value is a token or a quoted string (`wait=5`, `wait="5"`).
_PREFER_WAIT = re.compile(r'(?:^|[,;\s])wait\s*=\s*"?(\d+(?:\.\d+)?)"?', re.IGNORECASE)
_PREFER_ASYNC = re.compile(r"(?:^|[,;\s])respond-async(?:$|[,;\s])", re.IGNORECASE)


def turn_id_for(session_id: str, message_id: str) -> str:
    """session-commands' own derivation (see docs/session-commands.md, Decisions)."""
    return derive_id("turn", session_id, message_id)


def parse_prefer(prefer: str | None, wait: float | None, max_wait_s: float) -> tuple[float, bool]:
    """(seconds to wait for the answer, respond without waiting for the decision)."""
    seconds = wait
    respond_async = False
    if prefer:
        found = _PREFER_WAIT.search(prefer)
        if found and seconds is None:
            seconds = float(found.group(1))
        respond_async = _PREFER_ASYNC.search(prefer) is not None
    return min(max(seconds or 0.0, 0.0), max_wait_s), respond_async and not seconds


async def _answer(submitted: Submitted, receipt: MessageReceipt, deadline: float) -> MessageReceipt:
    """Follow the turn's events until it completes or fails, or the deadline passes."""
    answer: HistoryMessage | None = None
    while (event := await submitted.until(deadline)) is not None:
        if isinstance(event, AssistantMessageAppended) and event.turn_id == receipt.turn_id:
            answer = HistoryMessage(
                seq=event.seq,
                message_id=event.message_id,
                role=MessageRole.ASSISTANT,
                content=event.content,
                agent=event.agent,
                turn_id=event.turn_id,
                created_at=event.occurred_at,
                interrupted=event.interrupted,
            )
        elif isinstance(event, TurnCompleted) and event.turn_id == receipt.turn_id:
            return receipt.model_copy(update={"status": MessageStatus.COMPLETED, "answer": answer})
        elif isinstance(event, TurnFailed) and event.turn_id == receipt.turn_id:
            failure = TurnFailure(error_class=event.error_class, reason=event.reason)
            return receipt.model_copy(update={"status": MessageStatus.FAILED, "failure": failure})
        elif cancelled_turn_over(event, receipt.turn_id):
            # Cancelled: over once its step reported (TurnStopped, after the interrupted text
            # was kept) — or at once for a queued message's turn, which never ran a step.
            return receipt.model_copy(update={"status": MessageStatus.CANCELLED, "answer": answer})
        elif isinstance(event, SESSION_ENDS):
            # A running turn failed just before (TurnFailed, above); a message still queued
            # was dropped with no event of its own, and its turn will never run.
            failure = TurnFailure(error_class=_ENDED_BY[type(event)], reason=_NEVER_RAN)
            return receipt.model_copy(update={"status": MessageStatus.FAILED, "failure": failure})
    return receipt


async def _applied_answer(
    caller: Caller, submitted: Submitted, receipt: MessageReceipt, deadline: float
) -> MessageReceipt:
    """`Prefer: wait` on a keyed retry of a message applied before (its first answer lost with
    a dropped connection or a replica, or `pending`): the turn's end as for a first request —
    followed on the feed while the turn has yet to end, else read from the history."""
    read_model = caller.gateway.read_model
    session_id, turn_id = receipt.session_id, receipt.turn_id
    # No decision event will come for this command: the turn's own events count from now on,
    # before the store is read, so an end published after that read is not missed.
    submitted.watch.decided = True
    if await read_model.turn_pending(caller.tenant_id, session_id, turn_id):
        return await _answer(submitted, receipt, deadline)
    answer = await read_model.turn_answer(caller.tenant_id, session_id, turn_id)
    if answer is None:
        # Failed, or cancelled before any text: the history does not say which, nor why.
        return receipt
    status = MessageStatus.CANCELLED if answer.interrupted else MessageStatus.COMPLETED
    return receipt.model_copy(update={"status": status, "answer": answer})


_ENDED_BY: dict[type[SessionEvent], str] = {
    SessionClosed: "session_closed",
    SessionExpired: "session_expired",
    SessionErased: "session_erased",
}
_NEVER_RAN = "the session ended before this message's turn ran"


def cancelled_turn_over(event: SessionEvent, turn_id: str) -> bool:
    """The last event of a cancelled turn: `TurnStopped` once its step reported, or the
    `TurnCancelled` of a queued message's turn (it never ran a step, so nothing follows)."""
    if isinstance(event, TurnStopped):
        return event.turn_id == turn_id
    return isinstance(event, TurnCancelled) and event.turn_id == turn_id and event.agent is None


@router.post(
    "/{session_id}/messages",
    status_code=202,
    response_model=MessageReceipt,
    responses={200: {"model": MessageReceipt}, **problems(404, 409)},
    summary="Send a user message",
)
async def submit_message(
    session_id: str,
    body: SubmitMessageRequest,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
    prefer: Annotated[
        str | None,
        Header(
            max_length=200,
            description="`wait=N`: answer 200 with the assistant message if the turn ends "
            "within N s; `respond-async`: answer once the broker has the command.",
        ),
    ] = None,
    wait: Annotated[float | None, Query(ge=0, le=3600, description="As `Prefer: wait`.")] = None,
) -> JSONResponse:
    """202 once session-commands accepted the message (`accepted`, or `queued` behind the
    running turn), with its seq and turn id; 409 when the session refuses it (closed…)."""
    session_id = session_id_or_404(session_id)
    wait_s, respond_async = parse_prefer(prefer, wait, caller.gateway.settings.gateway_max_wait_s)
    started = time.monotonic()

    async def run(command_id: str) -> Reply:
        message_id = body.message_id or derive_id("message", command_id)
        command = SubmitUserMessage(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            message_id=message_id,
            content=body.content,
            author_name=body.author_name,
        )
        turn_id = turn_id_for(session_id, message_id)
        receipt = MessageReceipt(
            command_id=command_id,
            session_id=session_id,
            message_id=message_id,
            turn_id=turn_id,
            status=MessageStatus.PENDING,
            links=MessageLinks(
                session=f"/v1/sessions/{session_id}",
                history=f"/v1/sessions/{session_id}/messages",
            ),
        )
        async with caller.gateway.exchange.submit(
            command, caller.origin(), turn_id=turn_id, wait_for_decision=not respond_async
        ) as submitted:
            decision = submitted.decision
            if isinstance(decision, UserMessageAccepted):
                receipt = receipt.model_copy(
                    update={
                        "seq": decision.seq,
                        "status": MessageStatus.QUEUED
                        if decision.queued
                        else MessageStatus.ACCEPTED,
                        "links": receipt.links.model_copy(
                            update={
                                "history": f"/v1/sessions/{session_id}/messages"
                                f"?cursor={decision.seq - 1}"
                            }
                        ),
                    }
                )
                if wait_s > 0:
                    receipt = await _answer(submitted, receipt, started + wait_s)
            elif submitted.applied_silently:  # a retry of a message applied before
                stored = await caller.gateway.read_model.message(
                    caller.tenant_id, session_id, message_id
                )
                if stored is not None:
                    receipt = receipt.model_copy(
                        update={"seq": stored.seq, "status": MessageStatus.ACCEPTED}
                    )
                    if wait_s > 0:
                        receipt = await _applied_answer(
                            caller, submitted, receipt, started + wait_s
                        )
        finished = receipt.status in (
            MessageStatus.COMPLETED,
            MessageStatus.FAILED,
            MessageStatus.CANCELLED,
        )
        return Reply(
            200 if finished else 202,
            receipt.model_dump(mode="json"),
            {"Location": receipt.links.history},
            final=receipt.status is not MessageStatus.PENDING,
        )

    return await respond_once(caller, idempotency_key, body.model_dump(mode="json"), run)


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


@router.get(
    "/{session_id}/messages",
    response_model=HistoryPage,
    responses=problems(404),
    summary="Page through the history",
)
async def history(
    session_id: str,
    caller: CallerDep,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=2**31, description="A seq: `asc` pages continue above it, `desc` below."),
    ] = None,
    order: Order = Order.ASC,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> HistoryPage:
    """Messages by seq; `next_cursor` continues in the same order, null on the last page."""
    page = await caller.gateway.read_model.history(
        caller.tenant_id,
        session_id_or_404(session_id),
        limit=limit,
        newest_first=order is Order.DESC,
        cursor=cursor,
    )
    if page is None:
        raise ApiProblem(ProblemCode.SESSION_NOT_FOUND, NO_SUCH_SESSION)
    return page
