"""Facts valid at the contracts' limits are audited by the real service, never dead-lettered:
an LLM request with the most messages and tool calls a turn can have, and counts beyond 64 bits
(the contracts leave them unbounded; MongoDB stores only 64-bit integers). Other sessions'
facts handled meanwhile share the audit log's inserts and must be audited too."""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.commands import CreateSession
from contracts.dead_letters import DeadLetter, DeadLetterReason
from contracts.limits import MAX_LLM_REQUEST_MESSAGES, MAX_TOOL_CALLS_PER_TURN
from contracts.llm import ChatMessage, LLMCompleted, LLMRequested, ToolCall, Usage
from contracts.topics import TopicName
from tests.integration.audit.harness import caught_up, deployment, running, stored_documents
from tests.integration.audit.test_poison_records import dead_letters_of
from tests.integration.service_harness import Publisher

pytestmark = pytest.mark.integration

BEYOND_64_BITS = 10**20


def _longest_request() -> LLMRequested:
    calls = MAX_TOOL_CALLS_PER_TURN
    assistant = ChatMessage(
        role=MessageRole.ASSISTANT,
        content="",
        tool_calls=[ToolCall(id="call", name="read_file", arguments='{"path": "a"}')],
    )
    window = [ChatMessage(role=MessageRole.USER, content="q")] * (MAX_LLM_REQUEST_MESSAGES - calls)
    return LLMRequested(
        id="limits-request",
        session_id="limits-llm",
        tenant_id="acme",
        invocation_id="inv-limits",
        turn_id="turn-limits",
        step=0,
        agent=AgentType.CODER,
        messages=window + [assistant] * calls,
    )


async def test_facts_at_the_contracts_limits_are_audited(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        group = f"audit-{unique_suffix}"
        request = _longest_request()
        completed = LLMCompleted(
            id="limits-completed",
            session_id="limits-llm",
            tenant_id="acme",
            invocation_id="inv-limits",
            turn_id="turn-limits",
            step=BEYOND_64_BITS,  # a step is unbounded by the contract (token counts are not)
            agent=AgentType.CODER,
            finish_reason="stop",
            provider="offline",
            model="m",
            content="done",
            usage=Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4),
        )
        letter = DeadLetter(
            id="limits-dead-letter",
            session_id="limits-dl",
            origin_topic=env.topic(TopicName.COMMANDS),
            origin_partition=0,
            origin_offset=BEYOND_64_BITS,
            consumer_group="upstream",
            source_service="session-commands",
            reason=DeadLetterReason.MALFORMED_JSON,
            error_class="DecodeError",
            error_message="boom",
            attempts=BEYOND_64_BITS,
        )
        creates = [
            CreateSession(id=f"limits-create-{i}", session_id=f"limits-{i}", tenant_id="acme")
            for i in range(60)
        ]
        async with running(env.settings(group)), Publisher(env.bootstrap) as publisher:
            await publisher.send(env.topic(TopicName.COMMANDS), *creates[:30])
            await publisher.send(env.topic(TopicName.LLM_REQUESTS), request)
            await publisher.send(env.topic(TopicName.LLM_RESULTS), completed)
            await publisher.send(env.topic(TopicName.DEAD_LETTERS), letter)
            await publisher.send(env.topic(TopicName.COMMANDS), *creates[30:])
            await caught_up(env, group)
        records = {d["record"]["fact_id"]: d["record"] for d in await stored_documents(env)}
        assert await dead_letters_of(env, group) == []
        expected = {request.id, completed.id, letter.id, *(c.id for c in creates)}
        assert expected <= set(records)
        parts = records[request.id]["content_parts"]
        assert len(parts) == MAX_LLM_REQUEST_MESSAGES + MAX_TOOL_CALLS_PER_TURN
        assert records[completed.id]["detail"]["step"] == str(BEYOND_64_BITS)
        assert records[letter.id]["detail"]["attempts"] == str(BEYOND_64_BITS)
