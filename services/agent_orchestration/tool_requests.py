"""A model's calls of catalogue tools → one RequestToolCalls for session-commands.

Every call of the answer is in it, so that the next prompt can answer each one (OpenAI wants a
tool message per call of an assistant message): a call the agent may make is checked against
the tool's schema here; one it may not make, or with unusable arguments, carries a `refusal`
that session-commands records at once as the call's error result, for the model to read.
"""

from contracts.agents import AgentType
from contracts.llm import ToolCall
from contracts.tools import RequestedToolCall, tool_call_id_for
from services.agent_orchestration.catalogue import AgentCatalogue
from services.agent_orchestration.tool_specs import argument_problem


def requested_calls(
    calls: list[ToolCall], agent: AgentType, invocation_id: str, catalogue: AgentCatalogue
) -> list[RequestedToolCall]:
    granted = catalogue.granted_tools(agent)
    requested = []
    for index, call in enumerate(calls):
        # Our own id, not the model's: unique in the turn, a valid Id, short enough for OpenAI.
        tool_call_id = tool_call_id_for(invocation_id, index)
        spec = granted.get(call.name)
        if spec is None:
            offered = ", ".join(granted) or "none"
            requested.append(
                RequestedToolCall(
                    tool_call_id=tool_call_id,
                    tool=call.name,
                    arguments=call.arguments,
                    runs_on="client",
                    refusal=f"unknown tool {call.name!r}: the {agent.value} agent may call "
                    f"{offered}",
                )
            )
            continue
        requested.append(
            RequestedToolCall(
                tool_call_id=tool_call_id,
                tool=call.name,
                arguments=call.arguments,
                runs_on=spec.runs_on,
                needs_approval=spec.needs_approval,
                idempotent=spec.idempotent,
                refusal=argument_problem(spec, call.arguments),
            )
        )
    return requested
