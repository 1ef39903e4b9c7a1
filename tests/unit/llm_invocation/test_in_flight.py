"""The registry of running invocations: supersession and abandonment cancel the right tasks."""

import asyncio

import pytest

from services.llm_invocation.abandonment import Abandon
from services.llm_invocation.in_flight import InFlightInvocations
from tests.support.llm_invocation.requests import llm_request

pytestmark = pytest.mark.unit


def _forever() -> "asyncio.Task[bool]":
    return asyncio.create_task(asyncio.Event().wait())


async def test_abandon_cancels_only_matching_invocations_and_records_why() -> None:
    registry = InFlightInvocations()
    mine = registry.register(llm_request(session_id="s1", turn_id="t1"), _forever())
    other = registry.register(llm_request(session_id="s2", turn_id="t1"), _forever())
    assert registry.abandon(Abandon("s1", "the session is over")) == 1
    await asyncio.sleep(0)
    assert mine.task.cancelled()
    assert mine.abandoned == "the session is over"
    assert not other.task.done()
    assert other.abandoned is None
    other.task.cancel()


async def test_a_newer_request_of_the_session_supersedes_the_running_one() -> None:
    registry = InFlightInvocations()
    older = registry.register(llm_request(session_id="s1", turn_id="t1", step=0), _forever())
    newer = registry.register(llm_request(session_id="s1", turn_id="t1", step=1), _forever())
    await asyncio.sleep(0)
    assert older.task.cancelled()
    assert older.abandoned is not None
    assert "superseded" in older.abandoned
    assert not newer.task.done()
    newer.task.cancel()


async def test_finish_forgets_and_is_idempotent() -> None:
    registry = InFlightInvocations()
    registration = registry.register(llm_request(), _forever())
    assert len(registry) == 1
    registry.finish(registration)
    registry.finish(registration)
    assert len(registry) == 0
    assert registry.abandon(Abandon("session-1", "over")) == 0
    registration.task.cancel()
