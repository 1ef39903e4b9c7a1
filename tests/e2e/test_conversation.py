"""A conversation with handoffs through the four services: history, agent context, audit trail."""

import asyncio
import time

import pytest
from pymongo import AsyncMongoClient
from rich.console import Console

from contracts.agents import AgentType, MessageRole
from services.audit.audit_log import AuditQuery, MongoAuditLog
from services.cli.demo import SCRIPT, run_demo
from services.session_commands.mongo.queries import SessionQueries
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


async def test_demo_conversation_hands_off_and_is_fully_recorded(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    report = await run_demo(settings, Console(width=120))
    user_messages = [step for step in SCRIPT if not isinstance(step, AgentType)]
    assert report.turns_completed == len(user_messages)
    assert report.agents_seen == set(AgentType)
    assert report.switches >= 2

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        database = client[settings.mongodb_database]
        queries = SessionQueries(database)
        history = await queries.history(report.session_id, tenant_id=settings.tenant_id, limit=100)
        roles = [m.role for m in history.messages]
        assert [m.seq for m in history.messages] == list(range(1, 2 * len(user_messages) + 1))
        assert roles == [MessageRole.USER, MessageRole.ASSISTANT] * len(user_messages)
        assert [m.content for m in history.messages if m.role is MessageRole.USER] == user_messages
        assert all(m.agent is not None for m in history.messages if m.role is MessageRole.ASSISTANT)

        state = await queries.get_session(report.session_id, tenant_id=settings.tenant_id)
        assert state is not None
        assert len(state.switch_history) == report.switches

        # The audit trail holds every fact of the session, in source order per topic.
        log = MongoAuditLog(database)
        deadline = time.monotonic() + 60
        while True:
            page = await log.query(AuditQuery(session_id=report.session_id, limit=1000))
            types = [r.fact_type for r in page.records]
            if (
                types.count("turn.completed.v1") == len(user_messages)
                or time.monotonic() > deadline
            ):
                break
            await asyncio.sleep(0.5)
        assert types.count("turn.completed.v1") == len(user_messages)
        assert types.count("session.submit_user_message.v1") == len(user_messages)
        assert types.count("session.agent_switched.v1") == report.switches
        assert "llm.completed.v1" in types
        assert len({r.id for r in page.records}) == len(page.records)

        # One trace per user turn: every audited fact of a turn carries the trace id that the
        # client started when it published the user's message.
        traces_by_turn: dict[str, set[str | None]] = {}
        for record in page.records:
            if record.turn_id is not None:
                traces_by_turn.setdefault(record.turn_id, set()).add(record.trace_id)
        command_traces = {
            r.trace_id for r in page.records if r.fact_type == "session.submit_user_message.v1"
        }
        assert len(traces_by_turn) == len(user_messages)
        assert all(len(traces) == 1 for traces in traces_by_turn.values()), traces_by_turn
        assert {t for traces in traces_by_turn.values() for t in traces} == command_traces
    finally:
        await client.close()
