"""One fact in, at most one message out: decode → decide → publish.

The runtime's key-ordered consumer calls `OrchestrationHandler` once per record of
`session-events` and `llm-results`, one at a time per session, and commits the offset only
after it returns. Orchestration keeps no state, so its only effect is the publish; the record
is done once the broker acknowledged it (acks=all). A crash before that re-runs the record,
which republishes the same ids (derived from turn id and step), and consumers drop the repeat.

Ack policy, explicitly:
- decided and published, or decided that nothing is to be done → done (committed);
- the broker does not answer (KafkaError) → RetryableError: this session's record is retried
  with backoff, other sessions keep flowing;
- the record does not decode, or its message cannot be built or encoded → any other exception:
  the runtime dead-letters it with origin, error and bytes, and the partition moves on.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from aiokafka.errors import KafkaError

from contracts.base import Message, utc_now
from contracts.codec import EncodedRecord, decode, encode
from contracts.llm import LLMRequested
from contracts.topics import Service, TopicName
from services.agent_orchestration.catalogue import AgentCatalogue
from services.agent_orchestration.policy import Decision, Output, Rule, decide
from services.agent_orchestration.prompt import PromptLimits
from services.runtime.errors import RetryableError
from services.runtime.record import Record
from services.runtime.telemetry.log_context import bind_log_context
from services.runtime.telemetry.tracing import current_traceparent

log = logging.getLogger(__name__)

SOURCE = Service.AGENT_ORCHESTRATION.value

Publish = Callable[[str, EncodedRecord], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OrchestrationTopics:
    """Full topic names: the two it reads and the two it writes."""

    session_events: str
    llm_results: str
    llm_requests: str
    turns: str

    @classmethod
    def with_prefix(cls, prefix: str) -> "OrchestrationTopics":
        return cls(
            session_events=f"{prefix}{TopicName.SESSION_EVENTS.value}",
            llm_results=f"{prefix}{TopicName.LLM_RESULTS.value}",
            llm_requests=f"{prefix}{TopicName.LLM_REQUESTS.value}",
            turns=f"{prefix}{TopicName.TURNS.value}",
        )

    @property
    def inputs(self) -> tuple[str, str]:
        return (self.session_events, self.llm_results)

    def input_topic(self, full_name: str) -> TopicName:
        if full_name == self.session_events:
            return TopicName.SESSION_EVENTS
        if full_name == self.llm_results:
            return TopicName.LLM_RESULTS
        raise NotAnInputTopic(f"agent-orchestration does not read {full_name!r}")

    def output_topic(self, output: Output) -> str:
        return self.llm_requests if isinstance(output, LLMRequested) else self.turns


class NotAnInputTopic(ValueError):
    """The consumer was subscribed to a topic orchestration does not read: a deployment error."""


_QUIET_RULES = frozenset({Rule.NOT_FOR_ORCHESTRATION, Rule.USER_SWITCH})
_WARNING_RULES = frozenset(
    {
        Rule.SWITCH_WITHOUT_TURN,
        Rule.TOOL_NOT_ALLOWED,
        Rule.MALFORMED_HANDOFF,
        Rule.DISALLOWED_TARGET,
        Rule.HOP_BOUND_REACHED,
        Rule.EMPTY_ANSWER,
    }
)


class OrchestrationHandler:
    def __init__(
        self,
        *,
        topics: OrchestrationTopics,
        catalogue: AgentCatalogue,
        limits: PromptLimits,
        publish: Publish,
        clock: Callable[[], datetime] = utc_now,
        span_traceparent: Callable[[], str | None] = current_traceparent,
    ) -> None:
        self._topics = topics
        self._catalogue = catalogue
        self._limits = limits
        self._publish = publish
        self._clock = clock
        self._span_traceparent = span_traceparent

    async def __call__(self, record: Record) -> None:
        """Session facts and LLM results in; LLM requests and turn commands out."""
        topic = self._topics.input_topic(record.topic)
        decoded = decode(record.value, record.headers, topic=topic)  # DecodeError → dead letter
        message = decoded.message
        bind_log_context(turn_id=getattr(message, "turn_id", None))
        decision = decide(message, self._catalogue, self._limits, self._clock())
        _log_decision(message, decision)
        if decision.output is None:
            return
        encoded = encode(
            decision.output,
            source=SOURCE,
            # The chain's correlation id is carried forward; a fact without one starts it.
            correlation_id=decoded.envelope.correlation_id or message.id,
            causation_id=message.id,
            traceparent=self._span_traceparent(),
        )
        target = self._topics.output_topic(decision.output)
        try:
            await self._publish(target, encoded)
        except KafkaError as exc:
            raise RetryableError(f"publish to {target}: {exc!r}") from exc


def _log_decision(message: Message, decision: Decision) -> None:
    if decision.rule in _QUIET_RULES:
        level = logging.DEBUG
    elif decision.rule in _WARNING_RULES:
        level = logging.WARNING
    else:
        level = logging.INFO
    output = decision.output
    log.log(
        level,
        "orchestration decided %s",
        decision.rule.value,
        extra={
            "rule": decision.rule.value,
            "input_type": getattr(message, "type", type(message).__name__),
            "input_id": message.id,
            "output_type": None if output is None else output.type,
            "output_id": None if output is None else output.id,
            "note": getattr(output, "note", None),
        },
    )
