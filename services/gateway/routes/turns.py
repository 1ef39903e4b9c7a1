"""Turns: stop the running one (CancelTurn), run a failed one again (RetryTurn)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from contracts.base import is_valid_id
from contracts.commands import CancelTurn, RetryTurn
from contracts.read_model import SessionView
from services.gateway.context import (
    CallerDep,
    IdempotencyKey,
    Reply,
    respond_once,
    session_id_or_404,
)
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.routes.responses import problems
from services.gateway.routes.sessions import apply_to_session
from services.gateway.schemas import CancelTurnRequest, CommandReceipt

router = APIRouter(prefix="/v1/sessions", tags=["turns"])


@router.post(
    "/{session_id}/turns/cancel",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Stop the running turn (a stop button)",
)
async def cancel_turn(
    session_id: str,
    caller: CallerDep,
    body: CancelTurnRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """200 once session-commands cancelled the turn (`turn.cancelled.v1`): the provider stream
    is aborted and the text streamed so far is kept in the history, marked interrupted; the
    next queued message then starts. 409 `turn_not_running` when no such turn runs."""
    session_id = session_id_or_404(session_id)
    turn_id = body.turn_id if body else None
    reason = body.reason if body else ""

    async def run(command_id: str) -> Reply:
        command = CancelTurn(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            turn_id=turn_id,
            # The credential, never a name from the body: the audit says who stopped it.
            requested_by=caller.principal.actor,
            reason=reason,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    request_body = {"turn_id": turn_id, "reason": reason}
    return await respond_once(caller, idempotency_key, request_body, run)


@router.post(
    "/{session_id}/turns/{turn_id}/retry",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Run a failed turn again (a regenerate button)",
)
async def retry_turn(
    session_id: str,
    turn_id: str,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Only the session's last turn, only when it failed and nothing started since; else 409
    `not_retryable` (or `turn_in_flight`). The rerun is a new turn; follow it on the session's
    history or events."""
    session_id = session_id_or_404(session_id)
    if not is_valid_id(turn_id):
        raise ApiProblem(ProblemCode.NOT_FOUND, "no such turn")
    failed_turn = turn_id

    async def run(command_id: str) -> Reply:
        command = RetryTurn(
            id=command_id, session_id=session_id, tenant_id=caller.tenant_id, turn_id=failed_turn
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, {"turn_id": failed_turn}, run)
