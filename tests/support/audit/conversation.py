"""A realistic conversation as the four services would publish it, for audit tests.

Ids are derived the way the services derive them (`contracts.base.derive_id`, with the same
names and parts as services/*/: "event", "invocation", "llm-result", "turn-command"…), and
secrets are sprinkled where real ones turn up: a user pasting an API key, a provider error
quoting it, tool arguments, a malformed command's bytes.
"""

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts.agents import AgentType, MessageRole
from contracts.base import Message, derive_id
from contracts.codec import EncodedRecord, encode
from contracts.commands import CloseSession, CreateSession, SubmitUserMessage, SwitchAgent
from contracts.dead_letters import DeadLetter, DeadLetterReason, OriginalHeader
from contracts.llm import (
    ChatMessage,
    FinishReason,
    LLMCompleted,
    LLMFailed,
    LLMRequested,
    ToolCall,
    Usage,
)
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    ContextMessage,
    ConversationContext,
    RejectionReason,
    SessionClosed,
    SessionCreated,
    SwitchInitiator,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    UserMessageAccepted,
)
from contracts.topics import Service, TopicName
from contracts.turns import CompleteTurn, FailTurn, SwitchAgentForTurn

SECRETS = (
    "sk-proj-Abc123Def456Ghi789Jkl012",
    "sk-ant-api03-ZyXwVuTsRqPoNmLk",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2-super-secret",
    "tok_live_abcdef123456",
)
"""Every one of these is planted in the conversation below and must appear in no output."""

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@dataclass(frozen=True, slots=True)
class Fact:
    topic: TopicName
    message: Message
    source: str
    correlation_id: str | None = None

    def encoded(self) -> EncodedRecord:
        return encode(
            self.message,
            source=self.source,
            correlation_id=self.correlation_id,
            causation_id=self.correlation_id,
            traceparent=TRACEPARENT,
        )


@dataclass(frozen=True, slots=True)
class RawFact:
    """A record that is not a valid contract message (a malformed upstream command)."""

    topic: TopicName
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def _event_id(command_id: str, index: int) -> str:
    return derive_id("event", command_id, index)


def conversation(session_id: str, tenant_id: str = "acme") -> list[Fact]:
    """Create, a turn with a hand-off, a rejected command, a failing turn, close."""
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    clock = iter(t0 + timedelta(seconds=i) for i in range(1000))
    s = {"session_id": session_id, "tenant_id": tenant_id}
    sc, ao, li = Service.SESSION_COMMANDS, Service.AGENT_ORCHESTRATION, Service.LLM_INVOCATION
    up = "upstream-app"

    def at() -> dict[str, datetime]:
        return {"occurred_at": next(clock)}

    create = CreateSession(
        id=f"{session_id}-cmd-create",
        **s,
        **at(),
        title="Checkout bug",
        system_prompt=f"You help with code. Internal token={SECRETS[5]}",
        metadata={"channel": "web"},
    )
    ask = SubmitUserMessage(
        id=f"{session_id}-cmd-ask",
        **s,
        **at(),
        message_id=f"{session_id}-m1",
        content=f"The checkout crashes. Our key is {SECRETS[0]}, please help.",
        author_name="Ann",
    )
    turn1 = derive_id("turn", session_id, ask.message_id)
    inv10, inv11 = derive_id("invocation", turn1, 0), derive_id("invocation", turn1, 1)
    ctx = ConversationContext(
        system_prompt=create.system_prompt,
        messages=[ContextMessage(seq=1, role=MessageRole.USER, content=ask.content)],
        switch_count=0,
    )
    llm_messages = [
        ChatMessage(role=MessageRole.SYSTEM, content=create.system_prompt),
        ChatMessage(role=MessageRole.USER, content=ask.content),
    ]
    handoff_args = json.dumps({"target": "debug", "reason": f"stack trace, key {SECRETS[1]}"})
    answer = f"Rotate {SECRETS[2]} and restart the checkout worker."
    foreign = SwitchAgent(
        id=f"{session_id}-cmd-foreign",
        session_id=session_id,
        tenant_id="intruder",
        **at(),
        target_agent=AgentType.CODER,
    )
    ask2 = SubmitUserMessage(
        id=f"{session_id}-cmd-ask2", **s, **at(), message_id=f"{session_id}-m2", content="Thanks!"
    )
    turn2 = derive_id("turn", session_id, ask2.message_id)
    inv20 = derive_id("invocation", turn2, 0)
    close = CloseSession(id=f"{session_id}-cmd-close", **s, **at(), reason="solved")
    turn1_ids = {"turn_id": turn1, "step": 0, "invocation_id": inv10}
    return [
        Fact(TopicName.COMMANDS, create, up),
        Fact(
            TopicName.SESSION_EVENTS,
            SessionCreated(
                id=_event_id(create.id, 0),
                **s,
                **at(),
                title=create.title,
                description="",
                system_prompt=create.system_prompt,
                agent=AgentType.ORCHESTRATOR,
                metadata=create.metadata,
            ),
            sc,
            create.id,
        ),
        Fact(TopicName.COMMANDS, ask, up),
        Fact(
            TopicName.SESSION_EVENTS,
            UserMessageAccepted(
                id=_event_id(ask.id, 0),
                **s,
                **at(),
                message_id=ask.message_id,
                seq=1,
                content=ask.content,
                queued=False,
            ),
            sc,
            ask.id,
        ),
        Fact(
            TopicName.SESSION_EVENTS,
            TurnStarted(
                id=_event_id(ask.id, 1),
                **s,
                **at(),
                turn_id=turn1,
                step=0,
                agent=AgentType.ORCHESTRATOR,
                user_message_id=ask.message_id,
                context=ctx,
            ),
            sc,
            ask.id,
        ),
        Fact(
            TopicName.LLM_REQUESTS,
            LLMRequested(
                id=inv10,
                **s,
                **at(),
                invocation_id=inv10,
                turn_id=turn1,
                step=0,
                agent=AgentType.ORCHESTRATOR,
                messages=llm_messages,
            ),
            ao,
            ask.id,
        ),
        Fact(
            TopicName.LLM_RESULTS,
            LLMCompleted(
                id=derive_id("llm-result", inv10),
                **s,
                **at(),
                invocation_id=inv10,
                turn_id=turn1,
                step=0,
                agent=AgentType.ORCHESTRATOR,
                content="",
                tool_calls=[ToolCall(id="call-1", name="switch_agent", arguments=handoff_args)],
                usage=Usage(prompt_tokens=50, completion_tokens=12, total_tokens=62),
                finish_reason=FinishReason.TOOL_CALLS,
                provider="offline",
                model="offline-1",
            ),
            li,
            ask.id,
        ),
        Fact(
            TopicName.TURNS,
            SwitchAgentForTurn(
                id=derive_id("turn-command", inv10),
                **s,
                **at(),
                **turn1_ids,
                from_agent=AgentType.ORCHESTRATOR,
                target_agent=AgentType.DEBUG,
                reason="stack trace",
            ),
            ao,
            ask.id,
        ),
        Fact(
            TopicName.SESSION_EVENTS,
            AgentSwitched(
                id=_event_id(derive_id("turn-command", inv10), 0),
                **s,
                **at(),
                from_agent=AgentType.ORCHESTRATOR,
                to_agent=AgentType.DEBUG,
                reason="stack trace",
                switch_count=1,
                initiated_by=SwitchInitiator.ORCHESTRATION,
                turn_id=turn1,
                step=1,
                context=ctx,
            ),
            sc,
            ask.id,
        ),
        Fact(
            TopicName.LLM_REQUESTS,
            LLMRequested(
                id=inv11,
                **s,
                **at(),
                invocation_id=inv11,
                turn_id=turn1,
                step=1,
                agent=AgentType.DEBUG,
                messages=llm_messages,
            ),
            ao,
            ask.id,
        ),
        Fact(
            TopicName.LLM_RESULTS,
            LLMCompleted(
                id=derive_id("llm-result", inv11),
                **s,
                **at(),
                invocation_id=inv11,
                turn_id=turn1,
                step=1,
                agent=AgentType.DEBUG,
                content=answer,
                finish_reason=FinishReason.STOP,
                provider="offline",
                model="offline-1",
            ),
            li,
            ask.id,
        ),
        Fact(
            TopicName.TURNS,
            CompleteTurn(
                id=derive_id("turn-command", inv11),
                **s,
                **at(),
                turn_id=turn1,
                step=1,
                invocation_id=inv11,
                agent=AgentType.DEBUG,
                content=answer,
            ),
            ao,
            ask.id,
        ),
        Fact(
            TopicName.SESSION_EVENTS,
            AssistantMessageAppended(
                id=_event_id(derive_id("turn-command", inv11), 0),
                **s,
                **at(),
                message_id=derive_id("assistant-message", turn1),
                seq=2,
                turn_id=turn1,
                agent=AgentType.DEBUG,
                content=answer,
            ),
            sc,
            ask.id,
        ),
        Fact(
            TopicName.SESSION_EVENTS,
            TurnCompleted(
                id=_event_id(derive_id("turn-command", inv11), 1),
                **s,
                **at(),
                turn_id=turn1,
                agent=AgentType.DEBUG,
                steps=2,
            ),
            sc,
            ask.id,
        ),
        Fact(TopicName.COMMANDS, foreign, up),
        Fact(
            TopicName.SESSION_EVENTS,
            CommandRejected(
                id=_event_id(foreign.id, 0),
                session_id=session_id,
                tenant_id="intruder",
                **at(),
                rejected_command_id=foreign.id,
                rejected_command_type=foreign.type,
                reason=RejectionReason.TENANT_MISMATCH,
                detail="session belongs to another tenant",
            ),
            sc,
            foreign.id,
        ),
        Fact(TopicName.COMMANDS, ask2, up),
        Fact(
            TopicName.LLM_RESULTS,
            LLMFailed(
                id=derive_id("llm-result", inv20),
                **s,
                **at(),
                invocation_id=inv20,
                turn_id=turn2,
                step=0,
                agent=AgentType.DEBUG,
                error_class="provider_error",
                message=f"401 Incorrect API key provided: {SECRETS[0]}. Authorization: Bearer {SECRETS[4]}",
                retryable=False,
            ),
            li,
            ask2.id,
        ),
        Fact(
            TopicName.TURNS,
            FailTurn(
                id=derive_id("turn-command", inv20),
                **s,
                **at(),
                turn_id=turn2,
                step=0,
                invocation_id=inv20,
                agent=AgentType.DEBUG,
                error_class="provider_error",
                reason="the model provider refused the call",
            ),
            ao,
            ask2.id,
        ),
        Fact(
            TopicName.SESSION_EVENTS,
            TurnFailed(
                id=_event_id(derive_id("turn-command", inv20), 0),
                **s,
                **at(),
                turn_id=turn2,
                agent=AgentType.DEBUG,
                error_class="provider_error",
                reason="the model provider refused the call",
            ),
            sc,
            ask2.id,
        ),
        Fact(TopicName.COMMANDS, close, up),
        Fact(
            TopicName.SESSION_EVENTS,
            SessionClosed(id=_event_id(close.id, 0), **s, **at(), reason="solved"),
            sc,
            close.id,
        ),
    ]


def malformed_command(session_id: str) -> RawFact:
    """A command with a broken body, as a buggy upstream would publish it (with a secret)."""
    value = (
        b'{"type": "session.submit_user_message.v1", "id": "' + session_id.encode() + b'-bad", '
        b'"session_id": "' + session_id.encode() + b'", "tenant_id": "acme", '
        b'"content": "password=' + SECRETS[3].encode() + b'", '  # no closing brace
    )
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{session_id}-bad".encode()),
        ("ce_type", b"session.submit_user_message.v1"),
        ("ce_source", b"upstream-app"),
        ("ce_subject", session_id.encode()),
        ("authorization", f"Bearer {SECRETS[4]}".encode()),
        ("traceparent", TRACEPARENT.encode()),
    )
    return RawFact(TopicName.COMMANDS, session_id.encode(), value, headers)


def dead_letter_for(
    raw: RawFact, *, origin_topic: str, partition: int, offset: int, consumer_group: str
) -> Fact:
    """The dead letter session-commands publishes for `raw` (as the shared runtime builds it)."""
    session_id = raw.key.decode()
    letter = DeadLetter(
        id=derive_id("dead-letter", consumer_group, origin_topic, partition, offset),
        session_id=session_id,
        origin_topic=origin_topic,
        origin_partition=partition,
        origin_offset=offset,
        consumer_group=consumer_group,
        source_service=Service.SESSION_COMMANDS.value,
        reason=DeadLetterReason.MALFORMED_JSON,
        error_class="DecodeError",
        error_message="malformed_json: Expecting property name enclosed in double quotes",
        original_key_b64=base64.b64encode(raw.key).decode(),
        original_value_b64=base64.b64encode(raw.value).decode(),
        original_headers=[
            OriginalHeader(name=name, value_b64=base64.b64encode(value).decode())
            for name, value in raw.headers
        ],
    )
    return Fact(TopicName.DEAD_LETTERS, letter, Service.SESSION_COMMANDS.value)
