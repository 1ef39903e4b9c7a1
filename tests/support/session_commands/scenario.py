"""Given / when / then for the session decider: commands built with defaults, state folded."""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.agents import AgentType
from contracts.commands import (
    CloseSession,
    CreateSession,
    EraseSession,
    ReopenSession,
    RetryTurn,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.session_events import SessionEvent
from contracts.turns import CompleteTurn, ExpireSession, FailTurn, SwitchAgentForTurn
from services.session_commands.domain.decider import Decision, SessionCommand, decide
from services.session_commands.domain.evolution import evolve
from services.session_commands.domain.policy import DEFAULT_POLICY, DeciderPolicy
from services.session_commands.domain.state import SessionState

SESSION = "s-1"
TENANT = "tenant-a"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

_ids = itertools.count(1)


def next_id(kind: str = "cmd") -> str:
    return f"{kind}-{next(_ids)}"


def create(**fields: Any) -> CreateSession:
    return CreateSession(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})


def submit(content: str = "hello", **fields: Any) -> SubmitUserMessage:
    defaults = {"id": next_id(), "session_id": SESSION, "tenant_id": TENANT}
    return SubmitUserMessage(
        **{**defaults, "message_id": next_id("msg"), "content": content, **fields}
    )


def switch(target: AgentType | str, **fields: Any) -> SwitchAgent:
    defaults = {"id": next_id(), "session_id": SESSION, "tenant_id": TENANT}
    return SwitchAgent(**{**defaults, "target_agent": target, **fields})


def update(**fields: Any) -> UpdateSession:
    return UpdateSession(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})


def close(**fields: Any) -> CloseSession:
    return CloseSession(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})


def erase(**fields: Any) -> EraseSession:
    return EraseSession(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})


def reopen(**fields: Any) -> ReopenSession:
    return ReopenSession(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})


def retry(turn_id: str, **fields: Any) -> RetryTurn:
    defaults = {"id": next_id(), "session_id": SESSION, "tenant_id": TENANT}
    return RetryTurn(**{**defaults, "turn_id": turn_id, **fields})


def _turn_fields(state: SessionState, fields: dict[str, Any]) -> dict[str, Any]:
    assert state.turn is not None, "no turn in flight in the given state"
    return {
        "id": next_id("turn-cmd"),
        "session_id": SESSION,
        "tenant_id": TENANT,
        "turn_id": state.turn.turn_id,
        "step": state.turn.step,
        "invocation_id": next_id("inv"),
        **fields,
    }


def complete(state: SessionState, content: str = "answer", **fields: Any) -> CompleteTurn:
    assert state.turn is not None
    return CompleteTurn(
        **_turn_fields(state, {"agent": state.turn.agent, "content": content, **fields})
    )


def fail(state: SessionState, **fields: Any) -> FailTurn:
    assert state.turn is not None
    return FailTurn(
        **_turn_fields(state, {"agent": state.turn.agent, "error_class": "LLMError", **fields})
    )


def hand_off(state: SessionState, target: AgentType, **fields: Any) -> SwitchAgentForTurn:
    assert state.turn is not None
    return SwitchAgentForTurn(
        **_turn_fields(
            state, {"from_agent": state.turn.agent, "target_agent": target, "reason": "r", **fields}
        )
    )


def expire(state: SessionState, **fields: Any) -> ExpireSession:
    defaults = {
        "id": next_id("expire"),
        "session_id": SESSION,
        "tenant_id": TENANT,
        "last_activity_at": state.last_activity_at,
    }
    return ExpireSession(**{**defaults, **fields})


@dataclass
class Session:
    """A session driven through the decider; `then` is the last decision."""

    policy: DeciderPolicy = DEFAULT_POLICY
    state: SessionState | None = None
    clock: datetime = T0
    history: list[SessionEvent] = field(default_factory=list)
    then: Decision | None = None

    def when(self, command: SessionCommand) -> Decision:
        self.clock += timedelta(seconds=1)
        decision = decide(self.state, command, now=self.clock, policy=self.policy)
        self.then = decision
        self.state = decision.state
        self.history.extend(decision.events)
        return decision

    def given(self, *commands: SessionCommand) -> "Session":
        for command in commands:
            self.when(command)
        return self

    @property
    def decision(self) -> Decision:
        assert self.then is not None
        return self.then

    @property
    def current(self) -> SessionState:
        assert self.state is not None
        return self.state


def replay(
    events: list[SessionEvent], policy: DeciderPolicy = DEFAULT_POLICY
) -> SessionState | None:
    state: SessionState | None = None
    for event in events:
        state = evolve(state, event, policy)
    return state


def types(decision: Decision) -> list[str]:
    return [type(event).__name__ for event in decision.events]
