"""The decision table of agent-orchestration. Pure: a fact in, at most one message out.

| input                                                    | rule                  | output                       |
|----------------------------------------------------------|-----------------------|------------------------------|
| TurnStarted                                              | turn_started          | LLMRequested (step of turn)  |
| AgentSwitched by orchestration with turn_id/step/context | handoff_continues     | LLMRequested for new agent   |
| AgentSwitched by a user                                  | user_switch           | nothing                      |
| AgentSwitched by orchestration without turn context      | switch_without_turn   | nothing (logged as warning)  |
| ToolRoundCompleted (every call of the round answered)    | tools_answered        | LLMRequested, same agent,    |
|                                                          |                       |   with the calls and results |
| LLMCompleted, allowed switch_agent call, step < bound    | hand_off              | SwitchAgentForTurn           |
| LLMCompleted, switch_agent call, step >= bound           | hop_bound_reached     | CompleteTurn + note          |
| LLMCompleted, a catalogue tool the agent was granted     | call_tools            | RequestToolCalls (all calls; |
|   (and no granted switch_agent call)                     |                       |   refusals for the others)   |
| LLMCompleted, only tools the agent was not granted       | tool_not_allowed      | CompleteTurn + note          |
| LLMCompleted, switch_agent arguments malformed           | malformed_handoff     | CompleteTurn + note          |
| LLMCompleted, target unknown / not allowed / itself      | disallowed_target     | CompleteTurn + note          |
| LLMCompleted, no tool call, content                      | answer                | CompleteTurn                 |
| LLMCompleted, no tool call, blank content                | empty_answer          | FailTurn `empty_response`    |
| LLMFailed                                                | llm_failed            | FailTurn with its error_class|
|   (`cancelled`: the turn was stopped)                    |                       |   and its partial_content    |
| any other session event                                  | not_for_orchestration | nothing                      |

A model's misbehaviour completes the turn (with the model's text, or an explanation when it
wrote none) rather than failing it: the user gets an answer and the session is free again.
FailTurn is kept for turns with nothing to show: a failed or empty LLM call.

Orchestration keeps no state, so it does not know that a turn was cancelled: every result
goes on as a turn command, and session-commands ends a cancelled turn on it (keeping the text
streamed) instead of completing, failing or handing it off — that is how late results of a
cancelled turn are ignored.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from contracts.base import Message, derive_id
from contracts.limits import MAX_REASON_LENGTH
from contracts.llm import LLMCompleted, LLMFailed, LLMRequested
from contracts.session_events import (
    AgentSwitched,
    SwitchInitiator,
    ToolRoundCompleted,
    TurnStarted,
)
from contracts.turns import CompleteTurn, FailTurn, RequestToolCalls, SwitchAgentForTurn
from services.agent_orchestration.catalogue import SWITCH_AGENT_TOOL, AgentCatalogue
from services.agent_orchestration.handoff_tool import (
    DisallowedTarget,
    Handoff,
    MalformedArguments,
    read_switch_agent_call,
)
from services.agent_orchestration.prompt import PromptLimits, TurnStep, build_llm_request
from services.agent_orchestration.tool_requests import requested_calls

EMPTY_RESPONSE = "empty_response"


class Rule(StrEnum):
    TURN_STARTED = "turn_started"
    HANDOFF_CONTINUES = "handoff_continues"
    USER_SWITCH = "user_switch"
    SWITCH_WITHOUT_TURN = "switch_without_turn"
    TOOLS_ANSWERED = "tools_answered"
    CALL_TOOLS = "call_tools"
    HAND_OFF = "hand_off"
    HOP_BOUND_REACHED = "hop_bound_reached"
    TOOL_NOT_ALLOWED = "tool_not_allowed"
    MALFORMED_HANDOFF = "malformed_handoff"
    DISALLOWED_TARGET = "disallowed_target"
    ANSWER = "answer"
    EMPTY_ANSWER = "empty_answer"
    LLM_FAILED = "llm_failed"
    NOT_FOR_ORCHESTRATION = "not_for_orchestration"


Output = LLMRequested | SwitchAgentForTurn | CompleteTurn | FailTurn | RequestToolCalls


@dataclass(frozen=True, slots=True)
class Decision:
    rule: Rule
    output: Output | None = None


def decide(
    message: Message, catalogue: AgentCatalogue, limits: PromptLimits, now: datetime
) -> Decision:
    if isinstance(message, TurnStarted):
        turn = TurnStep(
            tenant_id=message.tenant_id,
            session_id=message.session_id,
            turn_id=message.turn_id,
            step=message.step,
            agent=message.agent,
            context=message.context,
        )
        return Decision(Rule.TURN_STARTED, build_llm_request(turn, catalogue, limits, now))
    if isinstance(message, AgentSwitched):
        return _on_agent_switched(message, catalogue, limits, now)
    if isinstance(message, ToolRoundCompleted):
        turn = TurnStep(
            tenant_id=message.tenant_id,
            session_id=message.session_id,
            turn_id=message.turn_id,
            step=message.step,
            agent=message.agent,
            context=message.context,
            rounds=tuple(message.rounds),
        )
        return Decision(Rule.TOOLS_ANSWERED, build_llm_request(turn, catalogue, limits, now))
    if isinstance(message, LLMCompleted):
        return _on_llm_completed(message, catalogue, limits, now)
    if isinstance(message, LLMFailed):
        failed = _fail(message, now, message.error_class, message.message)
        if message.partial_content:
            failed = failed.model_copy(update={"partial_content": message.partial_content})
        return Decision(Rule.LLM_FAILED, failed)
    return Decision(Rule.NOT_FOR_ORCHESTRATION)


def turn_command_id(invocation_id: str) -> str:
    return derive_id("turn-command", invocation_id)


UNPUBLISHABLE = "unpublishable"


def fail_unpublishable(output: Output, problem: str, now: datetime) -> FailTurn | None:
    """The FailTurn that ends a turn whose next message no record can carry (a prompt or tool
    calls over MAX_MESSAGE_BYTES, though each part kept its own limit): dead-lettered instead,
    the turn never ended. It follows from the same invocation as the message it replaces, so
    its id is that invocation's turn command's. None for a FailTurn (nothing smaller to say)."""
    if isinstance(output, FailTurn):
        return None
    agent = output.from_agent if isinstance(output, SwitchAgentForTurn) else output.agent
    return FailTurn(
        id=turn_command_id(output.invocation_id),
        session_id=output.session_id,
        occurred_at=now,
        tenant_id=output.tenant_id,
        turn_id=output.turn_id,
        step=output.step,
        invocation_id=output.invocation_id,
        agent=agent,
        error_class=UNPUBLISHABLE,
        reason=f"orchestration could not publish the turn's {output.type}: {problem}"[
            :MAX_REASON_LENGTH
        ],
    )


def _on_agent_switched(
    switched: AgentSwitched, catalogue: AgentCatalogue, limits: PromptLimits, now: datetime
) -> Decision:
    # A user's switch changes who answers the *next* turn; it never drives one itself.
    if switched.initiated_by is SwitchInitiator.USER:
        return Decision(Rule.USER_SWITCH)
    if switched.turn_id is None or switched.step is None or switched.context is None:
        return Decision(Rule.SWITCH_WITHOUT_TURN)
    turn = TurnStep(
        tenant_id=switched.tenant_id,
        session_id=switched.session_id,
        turn_id=switched.turn_id,
        step=switched.step,
        agent=switched.to_agent,
        context=switched.context,
        rounds=tuple(switched.rounds),
    )
    return Decision(Rule.HANDOFF_CONTINUES, build_llm_request(turn, catalogue, limits, now))


def _on_llm_completed(
    completed: LLMCompleted, catalogue: AgentCatalogue, limits: PromptLimits, now: datetime
) -> Decision:
    max_hops = limits.max_hops_per_turn
    if not completed.tool_calls:
        if completed.content.strip():
            return Decision(Rule.ANSWER, _complete(completed, now))
        return Decision(
            Rule.EMPTY_ANSWER,
            _fail(completed, now, EMPTY_RESPONSE, f"finish_reason={completed.finish_reason.value}"),
        )
    profile = catalogue.profile(completed.agent)
    granted = SWITCH_AGENT_TOOL in profile.tools
    switch_calls = [
        call for call in completed.tool_calls if granted and call.name == SWITCH_AGENT_TOOL
    ]
    granted_tools = catalogue.granted_tools(completed.agent)
    if not switch_calls and any(call.name in granted_tools for call in completed.tool_calls):
        return Decision(Rule.CALL_TOOLS, _request_tools(completed, catalogue, limits, now))
    if not switch_calls:
        names = sorted({call.name for call in completed.tool_calls})
        note = (
            f"the {completed.agent.value} agent called {', '.join(names)}, "
            "which it is not allowed to use; the call was ignored"
        )
        return Decision(Rule.TOOL_NOT_ALLOWED, _complete(completed, now, note))
    # Several switch calls in one answer: the first one counts, the rest are ignored.
    call = switch_calls[0]
    if completed.step >= max_hops:
        note = (
            f"the turn reached its bound of {max_hops} agent handoffs, so the "
            f"{completed.agent.value} agent's further handoff was not followed"
        )
        return Decision(Rule.HOP_BOUND_REACHED, _complete(completed, now, note))
    reading = read_switch_agent_call(call.arguments, profile.handoffs)
    if isinstance(reading, MalformedArguments):
        note = f"the {completed.agent.value} agent's handoff was malformed: {reading.problem}"
        return Decision(Rule.MALFORMED_HANDOFF, _complete(completed, now, note))
    if isinstance(reading, DisallowedTarget):
        allowed = ", ".join(target.value for target in profile.handoffs)
        note = (
            f"the {completed.agent.value} agent may not hand off to {reading.target!r} "
            f"(allowed: {allowed}); the handoff was ignored"
        )
        return Decision(Rule.DISALLOWED_TARGET, _complete(completed, now, note))
    return Decision(Rule.HAND_OFF, _switch(completed, reading, now))


def _switch(completed: LLMCompleted, handoff: Handoff, now: datetime) -> SwitchAgentForTurn:
    # `step` is the step that asked for the switch; session-commands gives the new agent
    # step + 1 in the AgentSwitched it emits, which is where the hop count grows.
    return SwitchAgentForTurn(
        **_answering(completed, now),
        from_agent=completed.agent,
        target_agent=handoff.target,
        reason=handoff.reason,
    )


def _request_tools(
    completed: LLMCompleted, catalogue: AgentCatalogue, limits: PromptLimits, now: datetime
) -> RequestToolCalls:
    return RequestToolCalls(
        **_answering(completed, now),
        agent=completed.agent,
        assistant_content=completed.content,
        calls=requested_calls(
            completed.tool_calls, completed.agent, completed.invocation_id, catalogue
        ),
        max_tool_calls=limits.max_tool_calls_per_turn,
    )


def _complete(completed: LLMCompleted, now: datetime, note: str | None = None) -> CompleteTurn:
    content = completed.content
    if not content.strip():
        # CompleteTurn needs text for the user; a refused tool call alone leaves none.
        content = (
            f"I could not finish this request: {note}. "
            "Please rephrase it, or switch to the agent you need."
        )
    return CompleteTurn(
        **_answering(completed, now),
        agent=completed.agent,
        content=content,
        note=None if note is None else note[:MAX_REASON_LENGTH],
        usage=completed.usage,
    )


def _fail(
    result: LLMCompleted | LLMFailed, now: datetime, error_class: str, reason: str
) -> FailTurn:
    return FailTurn(
        **_answering(result, now),
        agent=result.agent,
        error_class=error_class,
        reason=reason,
    )


class _Answering(TypedDict):
    id: str
    session_id: str
    occurred_at: datetime
    tenant_id: str
    turn_id: str
    step: int
    invocation_id: str


def _answering(result: LLMCompleted | LLMFailed, now: datetime) -> _Answering:
    """What every turn command says about the LLM result it follows from. Its id derives from
    the invocation, so a redelivered result yields the same command."""
    return _Answering(
        id=turn_command_id(result.invocation_id),
        session_id=result.session_id,
        occurred_at=now,
        tenant_id=result.tenant_id,
        turn_id=result.turn_id,
        step=result.step,
        invocation_id=result.invocation_id,
    )
