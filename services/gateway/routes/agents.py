"""Agents: the catalogue, a session's agent context, switching agent."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from contracts.commands import SwitchAgent
from contracts.read_model import AgentContext
from services.gateway.context import (
    CallerDep,
    Gateway,
    IdempotencyKey,
    Reply,
    respond_once,
    session_id_or_404,
)
from services.gateway.exchange import NO_SUCH_SESSION
from services.gateway.problems import ApiProblem, ProblemCode
from services.gateway.routes.responses import problems
from services.gateway.schemas import (
    AgentCatalogueView,
    AgentInfo,
    CommandReceipt,
    SwitchAgentRequest,
)

router = APIRouter(prefix="/v1", tags=["agents"])


@router.get("/agents", response_model=AgentCatalogueView, responses=problems(), summary="Agents")
async def agents(caller: CallerDep) -> AgentCatalogueView:
    """The agent catalogue agent-orchestration runs with: names, descriptions, hand-offs."""
    return AgentCatalogueView(
        agents=[
            AgentInfo(name=name, description=p.description, handoffs=list(p.handoffs))
            for name, p in caller.gateway.catalogue.agents.items()
        ]
    )


async def _context_or_404(gw: Gateway, tenant_id: str, session_id: str) -> AgentContext:
    context = await gw.read_model.agent_context(tenant_id, session_id)
    if context is None:
        raise ApiProblem(ProblemCode.SESSION_NOT_FOUND, NO_SUCH_SESSION)
    return context


@router.get(
    "/sessions/{session_id}/agent",
    response_model=AgentContext,
    responses=problems(404),
    summary="A session's agent context",
)
async def agent_context(session_id: str, caller: CallerDep) -> AgentContext:
    """Current agent, switch history, switches left (of 10)."""
    return await _context_or_404(caller.gateway, caller.tenant_id, session_id_or_404(session_id))


@router.post(
    "/sessions/{session_id}/agent",
    response_model=AgentContext,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Switch agent",
)
async def switch_agent(
    session_id: str,
    body: SwitchAgentRequest,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """200 with the new agent context; 409 `switch_limit_reached` after 10 switches. A turn
    already running finishes with its agent; the next one starts with the new agent. Switching
    to the current agent changes nothing (200; 409 on a closed or erased session, as any
    switch)."""
    session_id = session_id_or_404(session_id)

    async def run(command_id: str) -> Reply:
        # Asked even for the current agent: session-commands decides (a no-op on an open
        # session, applied silently; 409 on a closed, erased or expired one).
        await _context_or_404(caller.gateway, caller.tenant_id, session_id)
        command = SwitchAgent(
            id=command_id,
            session_id=session_id,
            tenant_id=caller.tenant_id,
            target_agent=body.agent,
            reason=body.reason,
        )
        async with caller.gateway.exchange.submit(command, caller.origin()) as submitted:
            decided = submitted.decision is not None or submitted.applied_silently
        if not decided:
            receipt = CommandReceipt(command_id=command_id, session_id=session_id)
            return Reply(202, receipt.model_dump(mode="json"), {}, final=False)
        context = await _context_or_404(caller.gateway, caller.tenant_id, session_id)
        return Reply(200, context.model_dump(mode="json"), {})

    return await respond_once(caller, idempotency_key, body.model_dump(mode="json"), run)
