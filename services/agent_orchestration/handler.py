"""One fact in, at most one message out: decode → decide → publish.

The runtime's key-ordered consumer calls `OrchestrationHandler` once per record of
`session-events` and `llm-results`, one at a time per session, and commits the offset only
after it returns. Orchestration keeps no state, so its only effect is the publish; the record
is done once the broker acknowledged it (acks=all). A crash before that re-runs the record,
which republishes the same ids (derived from turn id and step), and consumers drop the repeat.

Ack policy, explicitly:
- decided and published, or decided that nothing is to be done → done (committed);
- the broker does not answer → `ServiceRuntime.publish` raises RetryableError: this session's
  record is retried with backoff, other sessions keep flowing;
- its message cannot be encoded (over MAX_MESSAGE_BYTES though each part kept its limit) → a
  FailTurn `unpublishable` instead, so the turn ends;
- the record does not decode, or its message cannot be built → any other exception: the
  runtime dead-letters it with origin, error and bytes, and the partition moves on.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Final

from contracts.base import Message, utc_now
from contracts.codec import Decoded, EncodedRecord, EncodeError, decode, encode
from contracts.llm import LLMRequested
from contracts.registry import TOPIC_MESSAGES, type_name
from contracts.session_events import AgentSwitched, ToolRoundCompleted, TurnStarted
from contracts.topics import Service, TopicCatalogue, TopicName
from services.agent_orchestration.catalogue import AgentCatalogue
from services.agent_orchestration.decider import (
    Decision,
    Output,
    Rule,
    decide,
    fail_unpublishable,
)
from services.agent_orchestration.prompt import PromptLimits
from services.runtime.publishing import Publish
from services.runtime.record import Record
from services.runtime.telemetry.log_context import bind_log_context
from services.runtime.telemetry.tracing import current_traceparent

log = logging.getLogger(__name__)

SOURCE = Service.AGENT_ORCHESTRATION.value

INPUTS: Final = (TopicName.SESSION_EVENTS, TopicName.LLM_RESULTS)


# The session facts `decide` acts on; the others of a turn (message accepted, answer appended,
# turn completed…) are skipped by their `ce_type` header before any decoding.
_ACTED_ON: Final = frozenset(type_name(m) for m in (TurnStarted, AgentSwitched, ToolRoundCompleted))
_SKIPPED: Final = frozenset(
    type_name(model).encode()
    for model in TOPIC_MESSAGES[TopicName.SESSION_EVENTS]
    if type_name(model) not in _ACTED_ON
)


def concerns(record: Record) -> bool:
    """False for a session fact of a known type orchestration does nothing with (most of a
    turn's facts). A record without a known type still reaches the handler, which
    dead-letters it if it does not decode."""
    return record.header("ce_type") not in _SKIPPED


def output_topic(output: Output) -> TopicName:
    return TopicName.LLM_REQUESTS if isinstance(output, LLMRequested) else TopicName.TURNS


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
        topics: TopicCatalogue,
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
        topic = self._topics.input_topic(record.topic, INPUTS)
        decoded = decode(record.value, record.headers, topic=topic)  # DecodeError → dead letter
        message = decoded.message
        bind_log_context(turn_id=getattr(message, "turn_id", None))
        decision = decide(message, self._catalogue, self._limits, self._clock())
        _log_decision(message, decision)
        output = decision.output
        if output is None:
            return
        try:
            encoded = self._encode(output, decoded)
        except EncodeError as error:
            # Each part within its limit, the whole over MAX_MESSAGE_BYTES (a window, tool
            # rounds and prompts; refusals quoting a model's huge calls): dead-lettered, the
            # turn never ended. The turn fails instead and the session is free again.
            failed = fail_unpublishable(output, str(error), self._clock())
            if failed is None:
                raise
            log.warning(
                "orchestration cannot publish its %s, failing the turn: %s", output.type, error
            )
            output, encoded = failed, self._encode(failed, decoded)
        target = self._topics.name(output_topic(output))
        await self._publish(target, encoded)

    def _encode(self, output: Output, decoded: Decoded) -> EncodedRecord:
        message = decoded.message
        return encode(
            output,
            source=SOURCE,
            # The chain's correlation id is carried forward; a fact without one starts it.
            correlation_id=decoded.envelope.chain_correlation_id(message.id),
            causation_id=message.id,
            traceparent=self._span_traceparent(),
        )


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
