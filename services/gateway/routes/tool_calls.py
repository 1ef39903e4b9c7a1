"""Tool calls of the running turn: a client tool's result, and approving or denying a call
that needs approval (docs/tools.md). Each is a command to session-commands, answered once it
decided: 200 with the session, 409 `tool_call_not_pending` when the turn does not wait for
that call in that way, 404 for a missing (or another tenant's) session. A repeat for the same
tool call changes nothing and answers 200 (idempotent by tool call id)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from contracts.base import is_valid_id
from contracts.commands import ApproveToolCall, DenyToolCall, SubmitToolResult
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
from services.gateway.schemas import (
    CommandReceipt,
    ToolApprovalRequest,
    ToolDenialRequest,
    ToolResultRequest,
)

router = APIRouter(prefix="/v1/sessions", tags=["tool calls"])

_RESPONSES = {202: {"model": CommandReceipt}, **problems(404, 409)}


@router.post(
    "/{session_id}/tool-calls/{tool_call_id}/result",
    response_model=SessionView,
    responses=_RESPONSES,
    summary="Answer a client-executed tool call",
)
async def submit_tool_result(
    session_id: str,
    tool_call_id: str,
    body: ToolResultRequest,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The result of a `tool_call_requested` with runs_on `client`. Once every call of the
    round has its result, the turn continues (its events follow on the session's stream)."""
    session_id, call_id = _ids_or_404(session_id, tool_call_id)

    async def run(command_id: str) -> Reply:
        command = SubmitToolResult(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            turn_id=body.turn_id,
            tool_call_id=call_id,
            content=body.content,
            is_error=body.is_error,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, body.model_dump(), run)


@router.post(
    "/{session_id}/tool-calls/{tool_call_id}/approve",
    response_model=SessionView,
    responses=_RESPONSES,
    summary="Let a tool call that needs approval run",
)
async def approve_tool_call(
    session_id: str,
    tool_call_id: str,
    caller: CallerDep,
    body: ToolApprovalRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Answers a `tool_approval_requested`: the call is then requested from its executor."""
    session_id, call_id = _ids_or_404(session_id, tool_call_id)
    turn_id = body.turn_id if body else None

    async def run(command_id: str) -> Reply:
        command = ApproveToolCall(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            turn_id=turn_id,
            tool_call_id=call_id,
            # The credential, never a name from the body: the audit says who approved it.
            requested_by=caller.principal.actor,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, {"turn_id": turn_id}, run)


@router.post(
    "/{session_id}/tool-calls/{tool_call_id}/deny",
    response_model=SessionView,
    responses=_RESPONSES,
    summary="Refuse a tool call that needs approval",
)
async def deny_tool_call(
    session_id: str,
    tool_call_id: str,
    caller: CallerDep,
    body: ToolDenialRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Answers a `tool_approval_requested`: the call is not run; the model reads
    `denied: <reason>` as its result and the turn continues."""
    session_id, call_id = _ids_or_404(session_id, tool_call_id)
    turn_id = body.turn_id if body else None
    reason = body.reason if body else ""

    async def run(command_id: str) -> Reply:
        command = DenyToolCall(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            turn_id=turn_id,
            tool_call_id=call_id,
            requested_by=caller.principal.actor,
            reason=reason,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    request_body = {"turn_id": turn_id, "reason": reason}
    return await respond_once(caller, idempotency_key, request_body, run)


def _ids_or_404(session_id: str, tool_call_id: str) -> tuple[str, str]:
    session_id = session_id_or_404(session_id)
    if not is_valid_id(tool_call_id):
        raise ApiProblem(ProblemCode.NOT_FOUND, "no such tool call")
    return session_id, tool_call_id
