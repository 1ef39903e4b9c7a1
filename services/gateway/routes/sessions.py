"""Sessions: create, get, list, update, close, reopen, erase."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from contracts.base import derive_id
from contracts.commands import (
    CloseSession,
    Command,
    CreateSession,
    EraseSession,
    ReopenSession,
    UpdateSession,
)
from contracts.read_model import MAX_PAGE_SIZE, SessionPage, SessionStatus, SessionView
from services.gateway.context import (
    CallerDep,
    Gateway,
    IdempotencyKey,
    Reply,
    respond_once,
    session_id_or_404,
)
from services.gateway.exchange import NO_SUCH_SESSION, Origin
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.routes.responses import problems
from services.gateway.schemas import (
    CloseSessionRequest,
    CommandReceipt,
    CreateSessionRequest,
    EraseSessionRequest,
    UpdateSessionRequest,
)

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def session_location(session_id: str) -> str:
    return f"/v1/sessions/{session_id}"


async def _view_or_404(gw: Gateway, tenant_id: str, session_id: str) -> SessionView:
    view = await gw.read_model.get_session(tenant_id, session_id)
    if view is None:
        raise ApiProblem(ProblemCode.SESSION_NOT_FOUND, NO_SUCH_SESSION)
    return view


async def apply_to_session(
    gw: Gateway,
    origin: Origin,
    command: Command,
    *,
    success_status: int = 200,
    creating: bool = False,
) -> Reply:
    """Publish, wait for the decision, answer with the session as it is now stored."""
    async with gw.exchange.submit(command, origin, creating=creating) as submitted:
        decided = submitted.decision is not None or submitted.applied_silently
    location = {"Location": session_location(command.session_id)}
    if not decided:
        receipt = CommandReceipt(command_id=command.id, session_id=command.session_id)
        return Reply(202, receipt.model_dump(mode="json"), location, final=False)
    view = await _view_or_404(gw, origin.tenant_id, command.session_id)
    return Reply(success_status, view.model_dump(mode="json"), location)


@router.post(
    "",
    status_code=201,
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(409)},
    summary="Create a session",
)
async def create_session(
    body: CreateSessionRequest,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """201 with the stored session once session-commands created it; 409 `session_exists`
    when the id is taken; 202 (`pending`) if it did not decide within the gateway's wait."""

    async def run(command_id: str) -> Reply:
        command = CreateSession(
            id=command_id,
            session_id=body.session_id or derive_id("session", command_id),
            tenant_id=caller.tenant_id,
            title=body.title,
            description=body.description,
            system_prompt=body.system_prompt or "",
            initial_agent=body.initial_agent,
            metadata=body.metadata,
            mid_turn_policy=body.mid_turn_policy,
        )
        return await apply_to_session(
            caller.gateway, caller.origin(), command, success_status=201, creating=True
        )

    return await respond_once(caller, idempotency_key, body.model_dump(mode="json"), run)


@router.get("", response_model=SessionPage, responses=problems(), summary="List sessions")
async def list_sessions(
    caller: CallerDep,
    status: SessionStatus | None = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> SessionPage:
    """The tenant's sessions, newest activity first; `status` filters."""
    return await caller.gateway.read_model.list_sessions(
        caller.tenant_id, status=status, page=page, page_size=page_size
    )


@router.get(
    "/{session_id}", response_model=SessionView, responses=problems(404), summary="Get a session"
)
async def get_session(session_id: str, caller: CallerDep) -> SessionView:
    return await _view_or_404(caller.gateway, caller.tenant_id, session_id_or_404(session_id))


@router.patch(
    "/{session_id}",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Update title / description / mid-turn policy",
)
async def update_session(
    session_id: str,
    body: UpdateSessionRequest,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    session_id = session_id_or_404(session_id)

    async def run(command_id: str) -> Reply:
        command = UpdateSession(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            title=body.title,
            description=body.description,
            mid_turn_policy=body.mid_turn_policy,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, body.model_dump(mode="json"), run)


@router.post(
    "/{session_id}/close",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Close a session",
)
async def close_session(
    session_id: str,
    caller: CallerDep,
    body: CloseSessionRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """A running turn fails (`session_closed`) and queued messages are dropped."""
    session_id = session_id_or_404(session_id)
    reason = body.reason if body else ""

    async def run(command_id: str) -> Reply:
        command = CloseSession(
            id=command_id, session_id=session_id, tenant_id=caller.tenant_id, reason=reason
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, {"reason": reason}, run)


@router.post(
    "/{session_id}/reopen",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Reopen a closed session",
)
async def reopen_session(
    session_id: str,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    session_id = session_id_or_404(session_id)

    async def run(command_id: str) -> Reply:
        command = ReopenSession(id=command_id, session_id=session_id, tenant_id=caller.tenant_id)
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, {}, run)


@router.post(
    "/{session_id}/erase",
    response_model=SessionView,
    responses={202: {"model": CommandReceipt}, **problems(404)},
    summary="Erase a session's content (on request)",
)
async def erase_session(
    session_id: str,
    caller: CallerDep,
    body: EraseSessionRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Messages, title, description, system prompt and metadata are erased, kept LLM results
    deleted; the session stays as a skeleton with status `erased`, which refuses every later
    command (409 `session_erased`). A running turn fails. Idempotent: erasing again answers
    200 with the same skeleton; another tenant's session answers 404 like a missing one."""
    session_id = session_id_or_404(session_id)
    reason = body.reason if body else ""

    async def run(command_id: str) -> Reply:
        command = EraseSession(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            # The credential, never a name from the body: the audit says who erased it.
            requested_by=caller.principal.actor,
            reason=reason,
        )
        return await apply_to_session(caller.gateway, caller.origin(), command)

    return await respond_once(caller, idempotency_key, {"reason": reason}, run)
