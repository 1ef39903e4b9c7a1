"""No finished LLM call is paid twice: two instances per service, calls longer than the revoke
drain, llm-invocation scaled 2 → 3 → 2 and the Mongo-compatible server killed (-9) mid-run.

A fake OpenAI-compatible server (in its own thread) answers every call in ~12 s, more than
the 10 s the runtime gives a revoked partition's handlers, and records, per request, whether
its reply was completely written ("finished") or cut off. Requests are grouped into
invocations by the turn's user message, unique per turn (one step per turn: the answer is
text, no hand-off). A duplicate is a second finished call of an invocation, or a call made
after one of its calls finished. Calls cut off by a stopping instance may be made again (the
documented cost of a shutdown mid-stream) and are counted apart.

Runs in `make chaos` (marker `slow`, 2 to 3 minutes): it needs a dedicated Mongo-compatible
server (a JVM start, twice) and ~40 s of sequential 12 s calls.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.cli.stack import SERVICES, replicated
from tests.chaos.dedicated_mongo import DedicatedMongo
from tests.e2e.conftest import Pipeline, free_ports, running_pipeline
from tests.e2e.conversations import (
    Conversation,
    EventCollector,
    commands_for,
    history_problems,
    plan,
    publish,
)
from tests.support.openai_server import FakeOpenAIServer, text_stream

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.slow]

SESSIONS, TURNS = 16, 3
CALL_S = 12.0  # > rebalance_drain_timeout_s (10 s) and > the pipeline's drain_timeout_s (10 s)
MONGO_OUTAGE_S = 15.0  # > the lease (10 s) and > the services' server selection timeout (5 s)
LLM = "llm-invocation"


@pytest.fixture
def dedicated_mongo(tmp_path: Path) -> Iterator[DedicatedMongo]:
    (port,) = free_ports(1)
    mongo = DedicatedMongo(tmp_path / "mongo-infra", port)
    mongo.start()
    try:
        yield mongo
    finally:
        mongo.stop()


@pytest.fixture
def slow_provider() -> Iterator[FakeOpenAIServer]:
    # 16 events (role, 12 text chunks, finish, usage, [DONE]) paced CALL_S / 16 apart.
    answer = text_stream(" ".join(["paid"] * 12), chunk_chars=5, chunk_delay_s=CALL_S / 16)
    with FakeOpenAIServer.in_thread(answer) as server:
        yield server


@dataclass
class CallFigures:
    calls: int
    invocations: int
    finished: int
    cut_off: int
    called_again: int
    """Invocations with more than one call (a cut-off call made again, or a duplicate)."""
    duplicates: int


def call_figures(server: FakeOpenAIServer) -> CallFigures:
    calls: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    for index, request in enumerate(server.requests):
        calls[_turn_of(request.json)].append((request.received_at, server.finished_at(index)))
    duplicates = 0
    for attempts in calls.values():
        finished = sorted(end for _, end in attempts if end is not None)
        if finished:
            duplicates += len(finished) - 1  # paid in full twice
            duplicates += sum(1 for start, end in attempts if end is None and start > finished[0])
    finished_calls = sum(1 for a in calls.values() for _, end in a if end is not None)
    total = sum(len(a) for a in calls.values())
    return CallFigures(
        calls=total,
        invocations=len(calls),
        finished=finished_calls,
        cut_off=total - finished_calls,
        called_again=sum(1 for a in calls.values() if len(a) > 1),
        duplicates=duplicates,
    )


def _turn_of(body: dict[str, Any] | None) -> str:
    assert body is not None
    users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
    return str(users[-1])


def _unique_contents(runs: list[Conversation]) -> list[Conversation]:
    for run in runs:
        run.user_contents = [f"{run.session_id} {content}" for content in run.user_contents]
    return runs


def _log_lines(pipeline: Pipeline, needle: str) -> int:
    count = 0
    for name in pipeline.stack.services:
        path = pipeline.stack.log_path(name)
        if name.startswith(LLM) and path.exists():
            count += path.read_text(errors="replace").count(needle)
    return count


async def test_no_finished_call_is_paid_twice_through_scale_out_mongo_kill_and_scale_in(
    kafka_bootstrap_servers: str,
    dedicated_mongo: DedicatedMongo,
    slow_provider: FakeOpenAIServer,
    unique_suffix: str,
    tmp_path: Path,
) -> None:
    database = f"test_{unique_suffix}"
    # A short server selection timeout, so that the outage surfaces as errors (retried) in
    # every service rather than as 15 s of blocked calls.
    services_uri = f"{dedicated_mongo.uri}&serverSelectionTimeoutMS=5000"
    provider_env: dict[str, str | None] = {
        "LLM_BASE_URL": slow_provider.base_url,
        "LLM_MODEL": "fake-model",
        "LLM_API_KEY": "sk-chaos-test",
    }
    async with running_pipeline(
        kafka_bootstrap_servers,
        services_uri,
        database,
        unique_suffix,
        tmp_path,
        services=replicated(SERVICES, 2),
        extra_env=provider_env,
    ) as pipeline:
        stack, settings = pipeline.stack, pipeline.settings
        runs = _unique_contents(plan(f"paid-{unique_suffix}", SESSIONS, TURNS))
        commands = [c for run in runs for c in commands_for(run, settings.tenant_id)]
        started = time.monotonic()

        def completed() -> int:
            return sum(r.completed_turns for r in runs)

        async with EventCollector(kafka_bootstrap_servers, pipeline.catalogue, runs) as events:
            await publish(kafka_bootstrap_servers, pipeline.catalogue, commands)
            await _until(events, lambda: slow_provider.calls >= SESSIONS // 2, 60, "first calls")

            # Scale out 2 → 3 while calls of ~12 s stream: the revoke drain (10 s) times out.
            third = next(s for s in SERVICES if s.name == LLM).replica(3)
            stack.add(third, free_ports(1)[0])
            stack.start(third.name)
            await stack.wait_ready(timeout_s=90.0, names=[third.name])
            scaled_out_at = time.monotonic() - started

            # kill -9 the database mid-run, restart it on the same data file.
            await _until(events, lambda: completed() >= SESSIONS // 2, 120, "turns before kill")
            dedicated_mongo.kill()
            killed_at = time.monotonic() - started
            outage_ends = time.monotonic() + MONGO_OUTAGE_S
            while time.monotonic() < outage_ends:  # the outage's length is the scenario
                await events.poll()
            dedicated_mongo.start()
            restarted_at = time.monotonic() - started

            # Scale in 3 → 2 once turns flow again (SIGTERM: drain, then leave the group).
            after_restart = completed()
            await _until(events, lambda: completed() > after_restart, 120, "turns after restart")
            stack.stop(third.name)
            scaled_in_at = time.monotonic() - started

            try:
                await events.until_all_turns_complete(runs, TURNS, timeout_s=300)
            finally:
                elapsed = time.monotonic() - started
                figures = call_figures(slow_provider)
                print(
                    f"\npaid calls: {figures.calls} calls for {figures.invocations} invocations "
                    f"({SESSIONS * TURNS} turns); finished {figures.finished}, cut off "
                    f"{figures.cut_off}; invocations called more than once: "
                    f"{figures.called_again}; DUPLICATES of finished calls: {figures.duplicates}"
                    f"\nclaims waited on: {_log_lines(pipeline, 'waiting for its result')}, "
                    f"leases taken over: {_log_lines(pipeline, 'lapsed (no renewal')}, "
                    f"finished calls whose durable steps were retried: "
                    f"{_log_lines(pipeline, 'its durable steps failed')}\n"
                    f"timeline (s): scale-out ready {scaled_out_at:.0f}, Mongo killed "
                    f"{killed_at:.0f}, restarted {restarted_at:.0f}, scale-in {scaled_in_at:.0f}, "
                    f"end {elapsed:.0f}"
                )

        problems = [p for run in runs for p in run.problems()]
        assert not problems, problems[:10]
        stored = await history_problems(dedicated_mongo.uri, database, runs, settings.tenant_id)
        assert not stored, stored[:10]
        assert figures.invocations == SESSIONS * TURNS
        assert figures.duplicates == 0


async def _until(
    events: EventCollector, condition: Callable[[], bool], timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        await events.poll()
