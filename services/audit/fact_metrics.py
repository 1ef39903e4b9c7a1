"""Domain metrics derived from the facts the audit already reads: turns, switches, refusals,
turn duration, mid-turn queue depth, LLM tokens and cost, dead letters.

Why here (docs/operations.md, "Where the domain metrics come from"): every one of these is a
fact on a topic the audit consumes and decodes anyway, so deriving them costs a few counter
increments per record that is already paid for, off the turn's critical path (the pipeline
never waits for the audit), in one place instead of one copy per producing service. The
handler calls `observe` once per fact, when its audit record is first published, so a replay
of the topic counts nothing twice (a crash between storing and publishing the audit record may
count that one fact again, like the audit topic itself gets it again).

State kept in memory: when each turn's message was accepted, for the duration histogram
(bounded), and which accepted messages wait behind a running turn, per session, for the queue
gauge (bounded by the sessions' queue bound). An
audit instance knows only the sessions of its partitions since it started: after a restart or
a rebalance, turns accepted before are not timed and their queued messages are not counted.

Labels are low-cardinality: agents, reasons, command types, models and tenants are bounded
sets; session, turn and message ids never become labels.
"""

from collections import OrderedDict
from datetime import datetime
from typing import Final, TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from contracts.base import Message
from contracts.dead_letters import DeadLetter
from contracts.llm import LLMCompleted
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    SessionClosed,
    SessionErased,
    SessionExpired,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    UserMessageAccepted,
)
from services.audit.llm_prices import LLMPrices

TURN_DURATION_BUCKETS: Final = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)
_MAX_REMEMBERED: Final = 100_000
"""Accepted messages remembered for the duration and queue figures (about 200 bytes each)."""


M = TypeVar("M", bound=MetricWrapperBase)


class _Bounded(OrderedDict[str, datetime]):
    def remember(self, key: str, value: datetime) -> None:
        self[key] = value
        if len(self) > _MAX_REMEMBERED:
            self.popitem(last=False)  # the oldest: a turn that never finished here


class FactMetrics:
    def __init__(self, registry: CollectorRegistry, prices: LLMPrices) -> None:
        self._prices = prices
        self.turns_started = Counter(
            "agent_runtime_turns_started",
            "Turns started (the first step of a user message's turn), by agent.",
            ["agent"],
            registry=registry,
        )
        self.turns_completed = Counter(
            "agent_runtime_turns_completed",
            "Turns completed, by the agent that answered.",
            ["agent"],
            registry=registry,
        )
        self.turns_failed = Counter(
            "agent_runtime_turns_failed",
            "Turns failed, by agent and reason (TurnFailed.error_class).",
            ["agent", "reason"],
            registry=registry,
        )
        self.turns_cancelled = Counter(
            "agent_runtime_turns_cancelled",
            "Turns cancelled, by agent (none: a queued message's turn) and reason.",
            ["agent", "reason"],
            registry=registry,
        )
        self.turn_duration = Histogram(
            "agent_runtime_turn_duration_seconds",
            "From the user message accepted to its turn completed (both stamped by "
            "session-commands), by the agent that answered.",
            ["agent"],
            buckets=TURN_DURATION_BUCKETS,
            registry=registry,
        )
        self.switches = Counter(
            "agent_runtime_agent_switches",
            "Agent switches, by from/to agent and who initiated them (user, orchestration).",
            ["from_agent", "to_agent", "initiator"],
            registry=registry,
        )
        self.rejected = Counter(
            "agent_runtime_commands_rejected",
            "Commands the session refused (CommandRejected), by reason and command type.",
            ["reason", "command"],
            registry=registry,
        )
        self.queued = Counter(
            "agent_runtime_messages_queued",
            "User messages accepted while a turn was running (mid-turn policy queue).",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "agent_runtime_mid_turn_queue_depth",
            "Queued user messages waiting behind a running turn, over the sessions this "
            "audit instance reads.",
            registry=registry,
        )
        self.llm_tokens = Counter(
            "agent_runtime_llm_tokens",
            "Tokens of completed LLM calls, by model, tenant and kind (input, output).",
            ["model", "tenant", "kind"],
            registry=registry,
        )
        self.llm_cost = Counter(
            "agent_runtime_llm_cost_usd",
            "Estimated cost of completed LLM calls in USD (token counts x the price file).",
            ["model", "tenant"],
            registry=registry,
        )
        self.llm_unpriced = Counter(
            "agent_runtime_llm_unpriced_calls",
            "Completed LLM calls of a model the price file does not list (cost counted as 0).",
            ["model"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "agent_runtime_dead_letters",
            "Dead letters, by the topic of the record and reason, and the service that gave up.",
            ["topic", "reason", "service"],
            registry=registry,
        )
        self._accepted_at = _Bounded()  # message id -> accepted at
        self._turn_accepted_at = _Bounded()  # turn id -> its message's accepted at
        self._waiting: dict[str, set[str]] = {}  # session id -> queued message ids
        self._depth = 0
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}

    def observe(self, message: Message) -> None:
        """Count one fact (the audit handler calls it once per fact, in per-session order)."""
        match message:
            case UserMessageAccepted():
                self._accepted_at.remember(message.message_id, message.occurred_at)
                if message.queued:
                    self.queued.inc()
                    self._waiting.setdefault(message.session_id, set()).add(message.message_id)
                    self._set_depth(+1)
            case TurnStarted():
                self._turn_started(message)
            case TurnCompleted():
                self._child(self.turns_completed, message.agent.value).inc()
                accepted = self._turn_accepted_at.pop(message.turn_id, None)
                if accepted is not None:
                    seconds = (message.occurred_at - accepted).total_seconds()
                    self._child(self.turn_duration, message.agent.value).observe(max(0.0, seconds))
            case TurnFailed():
                self._child(self.turns_failed, message.agent.value, message.error_class).inc()
                self._turn_accepted_at.pop(message.turn_id, None)
            case TurnCancelled():
                agent = message.agent.value if message.agent is not None else "none"
                self._child(self.turns_cancelled, agent, message.reason.value).inc()
                self._turn_accepted_at.pop(message.turn_id, None)
                self._unqueue(message.session_id, message.user_message_id)
            case AgentSwitched():
                self._child(
                    self.switches,
                    message.from_agent.value,
                    message.to_agent.value,
                    message.initiated_by.value,
                ).inc()
            case CommandRejected():
                self._child(
                    self.rejected, message.reason.value, message.rejected_command_type
                ).inc()
            case LLMCompleted():
                self._llm_completed(message)
            case DeadLetter():
                self._child(
                    self.dead_letters,
                    message.origin_topic,
                    message.reason.value,
                    message.source_service,
                ).inc()
            case SessionClosed() | SessionExpired() | SessionErased():
                # These empty the session's queue (session-commands' evolution).
                self._set_depth(-len(self._waiting.pop(message.session_id, ())))
            case _:
                pass

    def _turn_started(self, message: TurnStarted) -> None:
        if message.step != 0:
            return  # a hop: the same turn, continued by the agent it was handed to
        self._child(self.turns_started, message.agent.value).inc()
        accepted = self._accepted_at.pop(message.user_message_id, None)
        if accepted is not None:
            self._turn_accepted_at.remember(message.turn_id, accepted)
        self._unqueue(message.session_id, message.user_message_id)

    def _unqueue(self, session_id: str, message_id: str) -> None:
        waiting = self._waiting.get(session_id)
        if waiting is None or message_id not in waiting:
            return
        waiting.discard(message_id)
        if not waiting:
            del self._waiting[session_id]
        self._set_depth(-1)

    def _child(self, metric: M, *values: str) -> M:
        """`metric.labels(*values)`, kept: `labels()` validates and takes a lock on every call
        (9 µs against 1.7 for a kept child); a turn counts about six. Label values are
        low-cardinality (module docstring), so the children kept are few."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return cast(M, child)

    def _set_depth(self, change: int) -> None:
        if change:
            self._depth += change
            self.queue_depth.set(self._depth)

    def _llm_completed(self, message: LLMCompleted) -> None:
        usage, model, tenant = message.usage, message.model, message.tenant_id
        self._child(self.llm_tokens, model, tenant, "input").inc(usage.prompt_tokens)
        self._child(self.llm_tokens, model, tenant, "output").inc(usage.completion_tokens)
        cost = self._prices.cost_usd(model, usage.prompt_tokens, usage.completion_tokens)
        if cost is None:
            self._child(self.llm_unpriced, model).inc()
        else:
            self._child(self.llm_cost, model, tenant).inc(cost)
