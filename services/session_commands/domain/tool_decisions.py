"""Decisions about tool calls: a model's calls put the turn in the state "awaiting tools"
(`TurnInFlight.tool_round`), results / approvals / denials arrive in any order, and once every
call of the round is answered the turn continues on the same agent (ToolRoundCompleted).

A call is answered once: a repeated result, approval or denial for the same tool call id is
accepted and changes nothing (idempotent by tool call id, whatever the command id). While the
turn awaits tools no model step runs, so a cancel stops the turn at once (cancellation.py).
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from contracts.codec import fits_in_a_record
from contracts.commands import ApproveToolCall, DenyToolCall, SubmitToolResult, ToolCallCommand
from contracts.limits import MAX_MESSAGE_BYTES, MAX_TOOL_CALLS_PER_TURN, MAX_TOOL_EXCHANGE_BYTES
from contracts.session_events import (
    RejectionReason,
    ToolApprovalRequested,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallRequested,
    ToolResultRecorded,
    ToolRoundCompleted,
    TurnFailed,
)
from contracts.tools import CLIENT, RequestedToolCall, ToolArguments, ToolRound
from contracts.turns import ExpireToolCalls, RecordToolResult, RequestToolCalls
from services.runtime.json_text import json_problem, parse_json
from services.session_commands.domain.context_window import context_window
from services.session_commands.domain.decision import DecisionDraft
from services.session_commands.domain.state import (
    Approval,
    PendingToolCall,
    SessionState,
    TurnInFlight,
)
from services.session_commands.domain.state import ToolCallOutcomeKind as Kind

RUNTIME_SOURCE = "runtime"
"""`ToolResultRecorded.source` of a call refused before it ran."""
TOOL_DEADLINE_EXCEEDED = "tool_deadline_exceeded"
TOOL_CALL_LIMIT = "tool_call_limit"
TOOL_RESULTS_TOO_LARGE = "tool_results_too_large"

_ARGUMENTS: TypeAdapter[dict[str, Any]] = TypeAdapter(ToolArguments)


def request_tool_calls(out: DecisionDraft, turn: TurnInFlight, command: RequestToolCalls) -> None:
    """The step's model called tools: announce each call, record refusals at once."""
    if turn.tool_calls_made() + len(command.calls) > MAX_TOOL_CALLS_PER_TURN:
        # Orchestration stops offering tools before its own (lower) bound; this is the floor.
        out.emit(
            TurnFailed,
            turn_id=turn.turn_id,
            agent=turn.agent,
            error_class=TOOL_CALL_LIMIT,
            reason=f"the turn would make more than {MAX_TOOL_CALLS_PER_TURN} tool calls",
        )
        return
    deadline = out.now + timedelta(seconds=out.policy.tool_call_timeout_s)
    refused: list[tuple[RequestedToolCall, str]] = []
    seen: set[str] = set()
    announced = 0
    budget = command.max_tool_calls or MAX_TOOL_CALLS_PER_TURN
    made = turn.tool_calls_made()
    for index, call in enumerate(command.calls):
        problem = call.refusal
        if problem is None and made + index >= budget:
            problem = (
                f"not run: the turn reached its bound of {budget} tool calls; "
                "answer with what you have"
            )
        if call.tool_call_id in seen or turn.answered_call(call.tool_call_id):
            problem = f"tool call id {call.tool_call_id} was used before in this turn"
        seen.add(call.tool_call_id)
        arguments = _arguments(call.arguments) if problem is None else None
        if isinstance(arguments, str):
            problem = arguments
        if problem is not None or not isinstance(arguments, dict):
            refused.append((call, problem or "refused"))
            continue
        out.emit(
            ToolApprovalRequested if call.needs_approval else ToolCallRequested,
            turn_id=turn.turn_id,
            tool_call_id=call.tool_call_id,
            tool=call.tool,
            step=turn.step,
            agent=command.agent,
            arguments=arguments,
            runs_on=call.runs_on,
            idempotent=call.idempotent,
            deadline=deadline,
            assistant_content=command.assistant_content if announced == 0 else "",
        )
        announced += 1
    for call, problem in refused:
        if call.tool_call_id in {c.tool_call_id for c in _round_calls(out)}:
            continue  # a repeated id: the first call of that id stands
        out.emit(
            ToolResultRecorded,
            turn_id=turn.turn_id,
            tool_call_id=call.tool_call_id,
            tool=call.tool,
            content=problem,
            is_error=True,
            source=RUNTIME_SOURCE,
        )
    continue_when_answered(out)


def submit_tool_result(out: DecisionDraft, state: SessionState, command: SubmitToolResult) -> None:
    if state.tool_call_settled(Kind.RESULT, command.tool_call_id) or state.tool_call_settled(
        Kind.DENIED, command.tool_call_id
    ):
        return  # answered before (also in an earlier round, or a turn that ended): a repeat
    call = _awaited_call(out, state, command)
    if call is None or call.result is not None:
        return
    if call.runs_on != CLIENT:
        out.reject(
            RejectionReason.TOOL_CALL_NOT_PENDING,
            f"tool call {call.tool_call_id} runs on {call.runs_on}, not on the client",
        )
    elif call.approval is Approval.PENDING:
        out.reject(
            RejectionReason.TOOL_CALL_NOT_PENDING,
            f"tool call {call.tool_call_id} awaits approval; approve it before it runs",
        )
    else:
        _record(out, call, command.content, command.is_error, CLIENT)


def record_tool_result(out: DecisionDraft, state: SessionState, command: RecordToolResult) -> bool:
    """tool-invocation's result of an `mcp:` call; False when it is stale (nothing to do)."""
    turn = state.turn
    if turn is None or turn.turn_id != command.turn_id or turn.tool_round is None:
        return False
    call = turn.tool_round.call(command.tool_call_id)
    if (
        call is None
        or call.result is not None
        or call.runs_on != command.source
        or call.approval is Approval.PENDING
    ):
        return False
    _record(out, call, command.content, command.is_error, command.source)
    return True


def approve_tool_call(out: DecisionDraft, state: SessionState, command: ApproveToolCall) -> None:
    if state.tool_call_settled(Kind.APPROVED, command.tool_call_id):
        return  # a repeat
    call = _awaited_call(out, state, command)
    if call is None or call.approval is Approval.APPROVED:
        return
    if call.approval is not Approval.PENDING:
        out.reject(RejectionReason.TOOL_CALL_NOT_PENDING, _no_approval(call))
        return
    turn = _turn(out)
    round_ = turn.tool_round
    assert round_ is not None
    out.emit(
        ToolCallApproved,
        turn_id=turn.turn_id,
        tool_call_id=call.tool_call_id,
        tool=call.tool,
        requested_by=command.requested_by,
    )
    out.emit(
        ToolCallRequested,
        turn_id=turn.turn_id,
        tool_call_id=call.tool_call_id,
        tool=call.tool,
        step=round_.step,
        agent=turn.agent,
        arguments=parse_json(call.arguments),
        runs_on=call.runs_on,
        idempotent=call.idempotent,
        deadline=round_.deadline,
    )


def deny_tool_call(out: DecisionDraft, state: SessionState, command: DenyToolCall) -> None:
    if state.tool_call_settled(Kind.DENIED, command.tool_call_id):
        return  # a repeat
    call = _awaited_call(out, state, command)
    if call is None or call.approval is Approval.DENIED:
        return
    if call.approval is not Approval.PENDING:
        out.reject(RejectionReason.TOOL_CALL_NOT_PENDING, _no_approval(call))
        return
    turn = _turn(out)
    out.emit(
        ToolCallDenied,
        turn_id=turn.turn_id,
        tool_call_id=call.tool_call_id,
        tool=call.tool,
        requested_by=command.requested_by,
        reason=command.reason,
    )
    continue_when_answered(out)


def expire_tool_calls(out: DecisionDraft, state: SessionState, command: ExpireToolCalls) -> bool:
    """The round outlived its deadline: the turn fails. False when it is stale."""
    turn = state.turn
    round_ = turn.tool_round if turn is not None else None
    if (
        turn is None
        or round_ is None
        or turn.turn_id != command.turn_id
        or round_.step != command.step
        or round_.deadline > out.now
    ):
        return False
    waiting = [c for c in round_.calls if c.result is None]
    names = ", ".join(f"{c.tool} ({c.tool_call_id})" for c in waiting)
    pending = (
        "approval or result" if any(c.approval is Approval.PENDING for c in waiting) else "result"
    )
    out.emit(
        TurnFailed,
        turn_id=turn.turn_id,
        agent=turn.agent,
        error_class=TOOL_DEADLINE_EXCEEDED,
        reason=f"no {pending} by {round_.deadline.isoformat()} for tool call(s) {names}"[:1_000],
    )
    return True


def continue_when_answered(out: DecisionDraft) -> None:
    """Every call of the round answered: the turn's next step, on the same agent."""
    turn = _turn(out)
    round_ = turn.tool_round
    if round_ is None or not round_.answered:
        return
    state = out.state
    assert state is not None
    finished = ToolRound(
        step=round_.step,
        agent=turn.agent,
        assistant_content=round_.assistant_content,
        calls=[call.outcome() for call in round_.calls],
    )
    rounds = [*turn.tool_rounds, finished]
    size = exchange_size(rounds)
    if size > MAX_TOOL_EXCHANGE_BYTES:
        fail_too_large(
            out,
            f"the turn's tool calls and results are {size} bytes, more than the "
            f"{MAX_TOOL_EXCHANGE_BYTES} a step can carry",
        )
        return
    continued = out.build(
        ToolRoundCompleted,
        turn_id=turn.turn_id,
        step=turn.step + 1,
        agent=turn.agent,
        context=context_window(state, turn.user_message, out.policy),
        rounds=rounds,
    )
    if not fits_in_a_record(continued):
        fail_too_large(out, too_large_with_context(size))
        return
    out.add(continued)


def too_large_with_context(size: int) -> str:
    """Within the exchange's bound, a context of escaped text (a control character is 6 bytes
    in JSON: a system prompt and a window full of them are ~390 kB) can still take the record
    that carries both over MAX_MESSAGE_BYTES: it could not be published (the command that
    answered the round was dead-lettered, the turn left waiting for its deadline)."""
    return (
        f"the turn's tool calls and results ({size} bytes) with its context are more than "
        f"the {MAX_MESSAGE_BYTES} bytes a record of the next step can carry"
    )


def fail_too_large(out: DecisionDraft, reason: str) -> None:
    turn = _turn(out)
    out.emit(
        TurnFailed,
        turn_id=turn.turn_id,
        agent=turn.agent,
        error_class=TOOL_RESULTS_TOO_LARGE,
        reason=reason,
    )


def exchange_size(rounds: Iterable[ToolRound]) -> int:
    return sum(_size(r) for r in rounds)


def _size(round_: ToolRound) -> int:
    """The round's texts as the records that carry them hold them: JSON strings, escapes
    included. UTF-8 alone undercounts: a control character (a terminal's ESC) takes 6 bytes as
    `\\u001b`, a newline or a quote 2, so 16 results of 16,000 ESC characters (256,000 bytes of
    UTF-8) made a ToolRoundCompleted of 1.5 MB, which could not be published."""
    texts = [round_.assistant_content]
    texts += [text for call in round_.calls for text in (call.arguments, call.content)]
    return sum(len(to_json(text)) - 2 for text in texts)  # less the quotes around each


def _record(
    out: DecisionDraft, call: PendingToolCall, content: str, is_error: bool, source: str
) -> None:
    out.emit(
        ToolResultRecorded,
        turn_id=_turn(out).turn_id,
        tool_call_id=call.tool_call_id,
        tool=call.tool,
        content=content,
        is_error=is_error,
        source=source,
    )
    continue_when_answered(out)


def _awaited_call(
    out: DecisionDraft, state: SessionState, command: ToolCallCommand
) -> PendingToolCall | None:
    """The call the command answers; None (with a refusal, or none for a repeat) otherwise."""
    turn = state.turn
    if turn is None or command.turn_id not in (None, turn.turn_id):
        which = (
            "no turn is running"
            if command.turn_id is None
            else (f"turn {command.turn_id} is not running")
        )
        out.reject(RejectionReason.TOOL_CALL_NOT_PENDING, which)
        return None
    call = turn.tool_round.call(command.tool_call_id) if turn.tool_round is not None else None
    if call is None:
        out.reject(
            RejectionReason.TOOL_CALL_NOT_PENDING,
            f"turn {turn.turn_id} awaits no tool call {command.tool_call_id}",
        )
    return call


def _no_approval(call: PendingToolCall) -> str:
    if call.approval is Approval.DENIED:
        return f"tool call {call.tool_call_id} was denied"
    if call.approval is Approval.APPROVED:
        return f"tool call {call.tool_call_id} was approved"
    return f"tool call {call.tool_call_id} needs no approval"


def _arguments(raw: str) -> dict[str, Any] | str:
    """The arguments as a JSON object, or why they are not one."""
    try:
        parsed = parse_json(raw) if raw.strip() else {}
    except ValueError as exc:  # not JSON (json_text.parse_json)
        return f"invalid arguments: not JSON ({json_problem(exc)})"
    if not isinstance(parsed, dict):
        return "invalid arguments: not a JSON object"
    try:
        return _ARGUMENTS.validate_python(parsed)
    except ValidationError as exc:
        why = exc.errors()[0].get("ctx", {}).get("error")
        return f"invalid arguments: {why or 'too long'}"


def _round_calls(out: DecisionDraft) -> tuple[PendingToolCall, ...]:
    round_ = _turn(out).tool_round
    return round_.calls if round_ is not None else ()


def _turn(out: DecisionDraft) -> TurnInFlight:
    state = out.state
    if state is None or state.turn is None:
        raise AssertionError("a turn in flight is required here")
    return state.turn
