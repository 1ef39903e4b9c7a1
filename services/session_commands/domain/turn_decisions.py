"""Decisions about turns and agents: submitting messages, the mid-turn queue, hand-offs,
completing and failing turns, and the cap of 10 switches."""

from contracts.agents import AgentType, agent_named
from contracts.base import derive_id
from contracts.codec import fits_in_a_record
from contracts.commands import (
    RetryTurn,
    SubmitUserMessage,
    SwitchAgent,
)
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    RejectionReason,
    SwitchInitiator,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)
from contracts.turns import CompleteTurn, FailTurn, RequestToolCalls, SwitchAgentForTurn
from services.session_commands.domain.cancellation import (
    interrupt_for,
    mid_turn_policy,
    stop_cancelled,
    turn_id_of,
)
from services.session_commands.domain.context_window import context_window
from services.session_commands.domain.decision import Decision, DecisionDraft, TurnCommand
from services.session_commands.domain.policy import (
    MAX_AGENT_SWITCHES,
    MidTurnPolicy,
)
from services.session_commands.domain.state import (
    SessionState,
    SessionStatus,
    TurnInFlight,
    UserMessage,
)
from services.session_commands.domain.tool_decisions import (
    exchange_size,
    fail_too_large,
    request_tool_calls,
    too_large_with_context,
)


def submit(out: DecisionDraft, state: SessionState, command: SubmitUserMessage) -> None:
    if state.knows_user_message(command.message_id):
        out.reject(RejectionReason.DUPLICATE_ID, f"message id {command.message_id} already used")
        return
    if not state.is_idle:
        if mid_turn_policy(out, state) is MidTurnPolicy.REJECT:
            out.reject(RejectionReason.TURN_IN_FLIGHT, "a turn is in flight")
            return
        if len(state.queue) >= out.policy.max_queued_messages:
            out.reject(
                RejectionReason.QUEUE_FULL,
                f"{out.policy.max_queued_messages} messages already wait for the turn in flight",
            )
            return
    out.emit(
        UserMessageAccepted,
        message_id=command.message_id,
        seq=state.next_seq,
        content=command.content,
        author_name=command.author_name,
        queued=not state.is_idle,
    )
    interrupt_for(out, state, command)
    if state.is_idle:
        start_turn(
            out,
            UserMessage(
                message_id=command.message_id,
                seq=state.next_seq,
                content=command.content,
                author_name=command.author_name,
            ),
        )
    else:
        start_next_queued(out)  # an interrupted turn that awaited tools stopped at once


def start_turn(out: DecisionDraft, message: UserMessage, *, turn_id: str | None = None) -> None:
    state = present(out.state)
    out.emit(
        TurnStarted,
        turn_id=turn_id or turn_id_of(state, message.message_id),
        step=0,
        agent=state.current_agent,
        user_message_id=message.message_id,
        context=context_window(state, message, out.policy),
    )


def retry(out: DecisionDraft, state: SessionState, command: RetryTurn) -> None:
    """Run the last turn's user message again, if that turn failed and nothing started since.

    The new turn id is derived from the failed one: never the id of an earlier attempt, so
    llm-invocation makes a fresh call instead of answering from the failure it kept.
    """
    failed = state.failed_turn
    if not state.is_idle:
        out.reject(RejectionReason.TURN_IN_FLIGHT, "a turn is in flight")
    elif failed is None or failed.turn_id != command.turn_id:
        out.reject(
            RejectionReason.NOT_RETRYABLE,
            f"turn {command.turn_id} is not the session's last turn, or it did not fail",
        )
    else:
        retried_id = derive_id(
            "turn", state.session_id, failed.user_message.message_id, failed.turn_id
        )
        start_turn(out, failed.user_message, turn_id=retried_id)


def start_next_queued(out: DecisionDraft) -> None:
    state = present(out.state)
    if state.is_idle and state.queue and state.status is SessionStatus.ACTIVE:
        start_turn(out, state.queue[0])


def switch_by_user(out: DecisionDraft, state: SessionState, command: SwitchAgent) -> None:
    target = agent_named(command.target_agent)
    if target is None:
        known = ", ".join(AgentType)
        out.reject(
            RejectionReason.INVALID_AGENT,
            f"no agent named {command.target_agent!r}; the agents are {known}",
        )
        return
    if target == state.current_agent:
        return  # a no-op, remembered so a redelivery stays one
    if state.switch_count >= MAX_AGENT_SWITCHES:
        out.reject(RejectionReason.SWITCH_LIMIT_REACHED, cap_detail())
        return
    # A turn in flight keeps its agent; the user's choice applies from the next turn on.
    out.emit(
        AgentSwitched,
        from_agent=state.current_agent,
        to_agent=target,
        reason=command.reason,
        switch_count=state.switch_count + 1,
        initiated_by=SwitchInitiator.USER,
    )


def turn_command(out: DecisionDraft, state: SessionState, command: TurnCommand) -> Decision:
    turn = state.turn
    if turn is None or turn.turn_id != command.turn_id or turn.step != command.step:
        # Redelivered, or overtaken (the turn ended, a later step ran): nothing to do.
        return out.decision(remember=False)
    if turn.awaiting_tools:
        return out.decision(remember=False)  # the step already reported: its tools are awaited
    if turn.cancelled is not None:
        stop_cancelled(out, state, turn, command)
    elif isinstance(command, CompleteTurn):
        out.emit(
            AssistantMessageAppended,
            message_id=derive_id("assistant-message", turn.turn_id),
            seq=state.next_seq,
            turn_id=turn.turn_id,
            agent=command.agent,
            content=command.content,
        )
        out.emit(TurnCompleted, turn_id=turn.turn_id, agent=command.agent, steps=turn.step + 1)
    elif isinstance(command, RequestToolCalls):
        request_tool_calls(out, turn, command)
    elif isinstance(command, FailTurn):
        out.emit(
            TurnFailed,
            turn_id=turn.turn_id,
            agent=command.agent,
            error_class=command.error_class,
            reason=command.reason,
        )
    else:
        switch_for_turn(out, state, turn, command)
    start_next_queued(out)
    return out.decision()


def switch_for_turn(
    out: DecisionDraft, state: SessionState, turn: TurnInFlight, command: SwitchAgentForTurn
) -> None:
    """A refused hand-off ends the turn (TurnFailed) rather than leave it waiting forever:
    orchestration gets no event to continue on. It should not offer the hand-off at the cap."""
    if command.target_agent == turn.agent:
        refusal = (RejectionReason.INVALID_AGENT, f"{turn.agent} is already running the turn")
    elif state.switch_count >= MAX_AGENT_SWITCHES:
        refusal = (RejectionReason.SWITCH_LIMIT_REACHED, cap_detail())
    else:
        switch_count = state.switch_count + 1
        switched = out.build(
            AgentSwitched,
            from_agent=turn.agent,
            to_agent=command.target_agent,
            reason=command.reason,
            switch_count=switch_count,
            initiated_by=SwitchInitiator.ORCHESTRATION,
            turn_id=turn.turn_id,
            step=turn.step + 1,
            context=context_window(state, turn.user_message, out.policy, switch_count=switch_count),
            rounds=list(turn.tool_rounds),
        )
        if fits_in_a_record(switched):
            out.add(switched)
        else:  # the rounds with the context: see tool_decisions.too_large_with_context
            fail_too_large(out, too_large_with_context(exchange_size(turn.tool_rounds)))
        return
    reason, detail = refusal
    out.reject(reason, detail)
    out.emit(
        TurnFailed, turn_id=turn.turn_id, agent=turn.agent, error_class=reason.value, reason=detail
    )


def fail_turn_in_flight(
    out: DecisionDraft, state: SessionState, error_class: str, reason: str
) -> None:
    """End the turn in flight of a session that closes, expires or is erased.

    A turn already cancelled (stopping: its step has not reported) ended for the user at its
    TurnCancelled; a TurnFailed now would end it a second time, and the TurnStopped that every
    TurnCancelled of a running turn is followed by would never come. It stops, keeping nothing:
    its step's late report finds no turn."""
    turn = state.turn
    if turn is not None and turn.cancelled is not None:
        out.emit(
            TurnStopped,
            turn_id=turn.turn_id,
            agent=turn.agent,
            steps=turn.step + 1,
            reason=turn.cancelled,
            partial_message_id=None,
        )
    elif turn is not None:
        out.emit(
            TurnFailed,
            turn_id=turn.turn_id,
            agent=turn.agent,
            error_class=error_class,
            reason=reason,
        )


def cap_detail() -> str:
    return f"at most {MAX_AGENT_SWITCHES} agent switches per session"


def present(state: SessionState | None) -> SessionState:
    if state is None:
        raise AssertionError("a session state is required here")
    return state
