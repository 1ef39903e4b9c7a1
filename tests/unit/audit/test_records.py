import itertools
from datetime import UTC, datetime

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.audit import RedactionMode
from contracts.codec import encode
from contracts.commands import CancelTurn
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.limits import (
    MAX_CONTENT_LENGTH,
    MAX_LLM_REQUEST_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_TOOL_CALLS,
)
from contracts.llm import ChatMessage, LLMCompleted, LLMFailed, LLMRequested, ToolCall, Usage
from contracts.topics import TopicName
from services.audit.dead_letter_facts import dead_letter_view
from services.audit.facts import view_of
from services.audit.records import (
    AuditEntry,
    FactIdentity,
    Origin,
    RecordClock,
    build_entry,
    record_id,
    trace_id_of,
)
from services.audit.redaction import RedactionPolicy
from services.gateway.api_keys import ApiKeyRegistry, hash_api_key, new_api_key
from services.runtime.actors import is_api_key_actor

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_record_id_depends_only_on_source_topic_and_fact_id() -> None:
    assert record_id(TopicName.COMMANDS, "c-1") == record_id(TopicName.COMMANDS, "c-1")
    assert record_id(TopicName.COMMANDS, "c-1") != record_id(TopicName.TURNS, "c-1")
    assert record_id(TopicName.COMMANDS, "c-1") != record_id(TopicName.COMMANDS, "c-2")
    assert record_id(TopicName.COMMANDS, "c-1").startswith("audit-")


@pytest.mark.parametrize(
    ("traceparent", "trace_id"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("not a traceparent", None),
        ("", None),
        (None, None),
    ],
)
def test_trace_id_of(traceparent: str | None, trace_id: str | None) -> None:
    assert trace_id_of(traceparent) == trace_id


def test_the_record_clock_never_repeats_or_goes_back() -> None:
    clock = RecordClock()
    moments = [clock.now() for _ in range(2_000)]
    assert all(a < b for a, b in itertools.pairwise(moments))


def test_full_content_too_large_to_publish_falls_back_to_hashes() -> None:
    # 40 messages of 32,000 characters: valid as a model, ~1.3 MB as a record.
    request = LLMRequested(
        id="r-1",
        session_id="s-1",
        tenant_id="acme",
        invocation_id="inv-1",
        turn_id="turn-1",
        step=0,
        agent=AgentType.CODER,
        messages=[
            ChatMessage(role=MessageRole.USER, content="x" * MAX_CONTENT_LENGTH) for _ in range(40)
        ],
    )
    fact = FactIdentity(
        fact_id=request.id,
        fact_type=request.type,
        fact_time=AT,
        session_id="s-1",
        source_service="agent-orchestration",
    )
    entry = build_entry(
        fact,
        view_of(request),
        Origin(TopicName.LLM_REQUESTS, "p.llm-requests", 0, 1),
        RedactionPolicy(RedactionMode.FULL),
        AT,
    )
    assert len(entry.encode().value) < MAX_MESSAGE_BYTES
    assert {p.content.mode for p in entry.record.content_parts} == {RedactionMode.HASHED}
    assert entry.record.detail["redaction_downgraded"] is True
    assert len(entry.record.content_parts) == 40


def _request(messages: list[ChatMessage]) -> LLMRequested:
    return LLMRequested(
        id="r-1",
        session_id="s-1",
        tenant_id="acme",
        invocation_id="inv-1",
        turn_id="turn-1",
        step=0,
        agent=AgentType.CODER,
        messages=messages,
    )


def _request_entry(request: LLMRequested, mode: RedactionMode) -> AuditEntry:
    fact = FactIdentity(request.id, request.type, AT, "s-1", "agent-orchestration")
    origin = Origin(TopicName.LLM_REQUESTS, "p.llm-requests", 0, 1)
    return build_entry(fact, view_of(request), origin, RedactionPolicy(mode), AT)


def test_a_request_with_the_most_messages_the_contract_allows_is_audited() -> None:
    # The whole window, both system prompts and a full turn of tool calls: every message and
    # every call's arguments is a part (the record once allowed only 218 parts).
    assistant = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        tool_calls=[ToolCall(id="c", name="read_file", arguments="{}")],
    )
    messages = [ChatMessage(role=MessageRole.USER, content="q")] * (MAX_LLM_REQUEST_MESSAGES - 50)
    entry = _request_entry(_request(messages + [assistant] * 50), RedactionMode.HASHED)
    assert len(entry.record.content_parts) == MAX_LLM_REQUEST_MESSAGES + 50
    assert "content_parts_omitted" not in entry.record.detail


def test_parts_that_do_not_fit_even_hashed_are_counted_not_published() -> None:
    # Valid by the contract, thousands of calls: even their hashes outgrow one record.
    calls = [ToolCall(id=f"c{i}", name="t" * 64, arguments="") for i in range(MAX_TOOL_CALLS)]
    message = ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=calls)
    entry = _request_entry(_request([message] * MAX_LLM_REQUEST_MESSAGES), RedactionMode.FULL)
    total = MAX_LLM_REQUEST_MESSAGES * (1 + MAX_TOOL_CALLS)
    kept = len(entry.record.content_parts)
    assert len(entry.encode().value) <= MAX_MESSAGE_BYTES
    assert 0 < kept < total
    assert entry.record.detail["content_parts_omitted"] == total - kept
    assert entry.record.detail["redaction_downgraded"] is True


def test_integers_beyond_64_bits_are_kept_as_their_digits() -> None:
    # Valid by the contracts (a step is unbounded), but MongoDB cannot store them.
    huge = 10**20
    completed = LLMCompleted(
        id="r-3",
        session_id="s-1",
        tenant_id="acme",
        invocation_id="inv-1",
        turn_id="turn-1",
        step=huge,
        agent=AgentType.ASK,
        finish_reason="stop",
        provider="offline",
        model="m",
        content="hi",
        usage=Usage(prompt_tokens=3, completion_tokens=1, total_tokens=2**63 - 1),
    )
    fact = FactIdentity(completed.id, completed.type, AT, "s-1", "llm-invocation")
    origin = Origin(TopicName.LLM_RESULTS, "p.llm-results", 0, 0)
    entry = build_entry(fact, view_of(completed), origin, RedactionPolicy(), AT)
    assert entry.record.detail["step"] == str(huge)
    assert entry.record.detail["total_tokens"] == 2**63 - 1  # still an integer
    letter = DeadLetter(
        id="dl-1",
        session_id="s-1",
        origin_topic="p.commands",
        origin_partition=0,
        origin_offset=huge,
        consumer_group="g",
        source_service="session-commands",
        reason=DeadLetterReason.MALFORMED_JSON,
        error_class="DecodeError",
        error_message="boom",
        attempts=huge,
    )
    fact = FactIdentity(letter.id, letter.type, AT, "s-1", "session-commands")
    origin = Origin(TopicName.DEAD_LETTERS, "p.dead-letters", 0, 0)
    entry = build_entry(fact, dead_letter_view(letter), origin, RedactionPolicy(), AT)
    assert entry.record.detail["attempts"] == str(huge)
    assert entry.record.detail["dead_letter_origin_offset"] == str(huge)


def test_free_text_in_detail_is_scrubbed_and_bounded() -> None:
    failed = LLMFailed(
        id="r-2",
        session_id="s-1",
        tenant_id="acme",
        invocation_id="inv-1",
        turn_id="turn-1",
        step=0,
        agent=AgentType.ASK,
        error_class="provider_error",
        message="Incorrect API key provided: sk-live0123456789abcdef " + "x" * 900,
        retryable=False,
    )
    fact = FactIdentity(failed.id, failed.type, AT, "s-1", "llm-invocation")
    entry = build_entry(
        fact,
        view_of(failed),
        Origin(TopicName.LLM_RESULTS, "p.llm-results", 0, 0),
        RedactionPolicy(),
        AT,
    )
    message = entry.record.detail["message"]
    assert isinstance(message, str)
    assert "sk-live" not in message
    assert "[REDACTED:api_key]" in message
    assert len(message) <= 1_000
    encode(entry.record, source="audit", structured=True)


@pytest.mark.parametrize(
    ("requested_by", "kept"),
    [
        ("api-key:6e8a2e45c421", True),  # what the gateway writes: a hash prefix, not a key
        ("jwt:jwt-0123456789ab", True),
        ("api-key: sk-live0123456789abcdef", False),  # an upstream publisher's mistake
        ("api-key:6e8a2e45c4210123456789", False),  # not the gateway's form: scrubbed
    ],
)
def test_who_asked_is_kept_when_it_is_the_gateways_id_of_a_key(
    requested_by: str, kept: bool
) -> None:
    cancel = CancelTurn(
        id="c-9", session_id="s-1", tenant_id="acme", requested_by=requested_by, reason="stop"
    )
    fact = FactIdentity(cancel.id, cancel.type, AT, "s-1", "gateway")
    entry = build_entry(
        fact, view_of(cancel), Origin(TopicName.COMMANDS, "p.commands", 0, 0), RedactionPolicy(), AT
    )
    assert (entry.record.detail["requested_by"] == requested_by) is kept
    if not kept:
        assert "[REDACTED:" in str(entry.record.detail["requested_by"])


def test_the_gateways_actor_ids_are_the_form_audit_keeps() -> None:
    key = new_api_key()
    registry = ApiKeyRegistry({hash_api_key(key): "acme"})
    principal = registry.authenticate(key)
    assert principal is not None
    assert is_api_key_actor(principal.actor)
