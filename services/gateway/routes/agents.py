"""Agents: the catalogue, a session's agent context, switching agent."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from contracts.commands import SwitchAgent
from contracts.read_model import AgentContext
from services.gateway.context import (
    GatewayDep,
    IdempotencyKey,
    OriginDep,
    PrincipalDep,
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
async def agents(gw: GatewayDep, who: PrincipalDep) -> AgentCatalogueView:
    """The agent catalogue agent-orchestration runs with: names, descriptions, hand-offs."""
    del who  # authenticated like every /v1 route
    return AgentCatalogueView(
        agents=[
            AgentInfo(name=name, description=p.description, handoffs=list(p.handoffs))
            for name, p in gw.catalogue.agents.items()
        ]
    )


async def _context_or_404(gw: GatewayDep, tenant_id: str, session_id: str) -> AgentContext:
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
async def agent_context(session_id: str, gw: GatewayDep, who: PrincipalDep) -> AgentContext:
    """Current agent, switch history, switches left (of 10)."""
    return await _context_or_404(gw, who.tenant_id, session_id_or_404(session_id))


@router.post(
    "/sessions/{session_id}/agent",
    response_model=AgentContext,
    responses={202: {"model": CommandReceipt}, **problems(404, 409)},
    summary="Switch agent",
)
async def switch_agent(
    session_id: str,
    body: SwitchAgentRequest,
    request: Request,
    gw: GatewayDep,
    who: PrincipalDep,
    origin: OriginDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """200 with the new agent context; 409 `switch_limit_reached` after 10 switches. A turn
    already running finishes with its agent; the next one starts with the new agent. Switching
    to the current agent changes nothing (200)."""
    session_id = session_id_or_404(session_id)

    async def run(command_id: str) -> Reply:
        current = await _context_or_404(gw, who.tenant_id, session_id)
        if current.current_agent is body.agent:  # session-commands would publish nothing
            return Reply(200, current.model_dump(mode="json"), {})
        command = SwitchAgent(
            id=command_id,
            session_id=session_id,
            tenant_id=who.tenant_id,
            target_agent=body.agent,
            reason=body.reason,
        )
        async with gw.exchange.submit(command, origin) as submitted:
            decided = submitted.decision is not None or submitted.applied_silently
        if not decided:
            receipt = CommandReceipt(command_id=command_id, session_id=session_id)
            return Reply(202, receipt.model_dump(mode="json"), {}, final=False)
        context = await _context_or_404(gw, who.tenant_id, session_id)
        return Reply(200, context.model_dump(mode="json"), {})

    return await respond_once(gw, request, who, idempotency_key, body.model_dump(mode="json"), run)
