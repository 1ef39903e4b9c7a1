"""After a scripted conversation through the four services, /metrics says what happened:
turns, agent switches, a refused command, tokens and their cost, a dead letter, time to first
token and the consumers' lag — each moved by exactly what the conversation's facts say."""

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from contracts.agents import AgentType
from contracts.codec import decode
from contracts.commands import CreateSession, SubmitUserMessage, SwitchAgent
from contracts.llm import LLMCompleted, LLMTokenDelta
from contracts.session_events import AgentSwitched, TurnCompleted, TurnStarted
from contracts.topics import TopicName
from services.cli.session_client import SessionClient, TurnOutcome, new_id
from services.runtime.partitioning import partition_for
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MODEL = "offline-deterministic-1"
INPUT_USD_PER_MILLION = 3.0
OUTPUT_USD_PER_MILLION = 15.0
PROMPTS = (
    "Implement a Python function that parses ISO 8601 dates and add tests for it.",
    "What is the difference between a process and a thread?",
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def pipeline_env(tmp_path: Path) -> dict[str, str]:
    prices = tmp_path / "llm_prices.toml"
    prices.write_text(
        f'[models."{MODEL}"]\n'
        f"input_per_million_usd = {INPUT_USD_PER_MILLION}\n"
        f"output_per_million_usd = {OUTPUT_USD_PER_MILLION}\n"
    )
    return {"AGENT_RUNTIME_LLM_PRICES_PATH": str(prices)}


async def scrape(pipeline: Pipeline, service: str) -> Samples:
    port = pipeline.stack.ports[service]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5.0)
    response.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def metrics_reaching(
    pipeline: Pipeline, service: str, done: Callable[[Samples], bool], what: str
) -> Samples:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        samples = await scrape(pipeline, service)
        if done(samples):
            return samples
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{service}/metrics: timed out waiting for {what}")
        await asyncio.sleep(0.25)


async def llm_completions(pipeline: Pipeline, session_id: str) -> list[LLMCompleted]:
    """Every LLMCompleted of the session, read back from llm-results (a topic of this test)."""
    topic = pipeline.catalogue.name(TopicName.LLM_RESULTS)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        results = [decode(r.value, r.headers).message for r in await read_to_the_end(consumer)]
    finally:
        await consumer.stop()
    unique = {r.id: r for r in results if isinstance(r, LLMCompleted)}
    return [r for r in unique.values() if r.session_id == session_id]


async def read_to_the_end(consumer: AIOKafkaConsumer) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of the consumer's topic up to its end offsets (a topic of this test)."""
    partitions = consumer.assignment()
    while not partitions:
        await asyncio.sleep(0.05)  # subscribed: the assignment comes with the first poll
        await consumer.getmany(timeout_ms=100)
        partitions = consumer.assignment()
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(list(partitions))
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = asyncio.get_running_loop().time() + 30
    while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        assert asyncio.get_running_loop().time() < deadline, "topic not read to its end"
        for batch in (await consumer.getmany(timeout_ms=1_000)).values():
            records += batch
    return records


async def test_metrics_move_by_what_the_conversation_did(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    session_id = new_id("metrics")
    ids = {"session_id": session_id, "tenant_id": settings.tenant_id}
    before = {s: await scrape(pipeline, s) for s in ("audit", "llm-invocation")}
    outcomes: list[TurnOutcome] = []

    async with SessionClient(settings, session_id) as client:
        outcomes.append(await client.submit(create_session(ids)))
        for prompt in PROMPTS:  # routed by the orchestrator: an orchestration switch each
            outcomes.append(await client.submit(user_message(ids, prompt)))
        switch = SwitchAgent(
            id=new_id("cmd"), **ids, target_agent=AgentType.ARCHITECT, reason="user asked"
        )
        outcomes.append(await client.submit(switch))  # a switch by the user
        outcomes.append(await client.submit(user_message(ids, "Sketch the component boundaries.")))
        refused = await client.submit(create_session(ids))  # the session exists
        outcomes.append(refused)
    assert refused.rejected is not None
    assert refused.rejected.reason.value == "session_exists"
    turns = [o for o in outcomes if o.completed is not None]
    assert len(turns) == len(PROMPTS) + 1
    assert all(o.failed is None for o in outcomes)

    # A record that is no command at all: session-commands dead-letters it.
    await publish_raw(pipeline, session_id, b"not a command {")

    updates = [u for o in outcomes for u in o.updates]
    started = [u for u in updates if isinstance(u, TurnStarted) and u.step == 0]
    completed = Counter(u.agent.value for u in updates if isinstance(u, TurnCompleted))
    switches = Counter(
        (u.from_agent.value, u.to_agent.value, u.initiated_by.value)
        for u in {u.id: u for u in updates if isinstance(u, AgentSwitched)}.values()
    )
    assert {initiator for _, _, initiator in switches} == {"user", "orchestration"}
    streamed = {u.invocation_id for u in updates if isinstance(u, LLMTokenDelta)}
    completions = await llm_completions(pipeline, session_id)
    input_tokens = sum(c.usage.prompt_tokens for c in completions)
    output_tokens = sum(c.usage.completion_tokens for c in completions)
    assert input_tokens > 0
    assert output_tokens > 0
    dead_letter = {
        "topic": pipeline.catalogue.name(TopicName.COMMANDS),
        "reason": "missing_header",
        "service": "session-commands",
    }

    def moved(samples: Samples, name: str, **labels: str) -> float:
        return total(samples, name, **labels) - total(before["audit"], name, **labels)

    audit = await metrics_reaching(
        pipeline,
        "audit",
        lambda s: (
            moved(s, "agent_runtime_dead_letters_total", **dead_letter) >= 1
            and moved(s, "agent_runtime_commands_rejected_total") >= 1
            and moved(s, "agent_runtime_turns_completed_total") >= len(turns)
        ),
        "the conversation's facts and the dead letter counted",
    )
    assert moved(audit, "agent_runtime_turns_started_total") == len(started) == len(turns)
    for agent, count in completed.items():
        assert moved(audit, "agent_runtime_turns_completed_total", agent=agent) == count
        assert moved(audit, "agent_runtime_turn_duration_seconds_count", agent=agent) == count
    assert moved(audit, "agent_runtime_turns_failed_total") == 0
    assert moved(audit, "agent_runtime_agent_switches_total") == sum(switches.values())
    for (from_agent, to_agent, initiator), count in switches.items():
        labels = {"from_agent": from_agent, "to_agent": to_agent, "initiator": initiator}
        assert moved(audit, "agent_runtime_agent_switches_total", **labels) == count
    assert moved(audit, "agent_runtime_commands_rejected_total") == 1
    assert (
        moved(
            audit,
            "agent_runtime_commands_rejected_total",
            reason="session_exists",
            command="session.create.v1",
        )
        == 1
    )
    tenant = {"model": MODEL, "tenant": settings.tenant_id}
    assert moved(audit, "agent_runtime_llm_tokens_total", **tenant, kind="input") == input_tokens
    assert moved(audit, "agent_runtime_llm_tokens_total", **tenant, kind="output") == output_tokens
    assert moved(audit, "agent_runtime_llm_cost_usd_total", **tenant) == pytest.approx(
        (input_tokens * INPUT_USD_PER_MILLION + output_tokens * OUTPUT_USD_PER_MILLION) / 1e6
    )
    assert moved(audit, "agent_runtime_dead_letters_total", **dead_letter) == 1

    llm = await scrape(pipeline, "llm-invocation")
    first_tokens = total(llm, "llm_time_to_first_token_seconds_count", model=MODEL) - total(
        before["llm-invocation"], "llm_time_to_first_token_seconds_count", model=MODEL
    )
    assert first_tokens == len(streamed) > 0

    await lag_drained(pipeline, session_id)


async def lag_drained(pipeline: Pipeline, session_id: str) -> None:
    """Every group reports the lag of the session's partition of each topic it reads, and it
    drains to 0: everything the conversation produced was handled and committed."""
    partition = str(partition_for(session_id, pipeline.catalogue.partitions))
    reads = {
        "session-commands": (TopicName.COMMANDS, TopicName.TURNS),
        "agent-orchestration": (TopicName.SESSION_EVENTS, TopicName.LLM_RESULTS),
        "llm-invocation": (TopicName.LLM_REQUESTS,),
        "audit": (TopicName.COMMANDS, TopicName.SESSION_EVENTS, TopicName.LLM_RESULTS),
    }
    for service, topics in reads.items():
        names = [pipeline.catalogue.name(t) for t in topics]

        def drained(samples: Samples, names: list[str] = names) -> bool:
            return all(lag_of(samples, name, partition) == 0 for name in names)

        await metrics_reaching(pipeline, service, drained, f"lag of partition {partition} at 0")


def lag_of(samples: Samples, topic: str, partition: str) -> float | None:
    """None while the consumer has not reported the partition (no record of it came in)."""
    values = [
        value
        for (name, labels), value in samples.items()
        if name == "agent_runtime_consumer_lag_records"
        and ("topic", topic) in labels
        and ("partition", partition) in labels
    ]
    return sum(values) if values else None


def create_session(ids: dict[str, str]) -> CreateSession:
    return CreateSession(id=new_id("cmd"), **ids, title="metrics")


def user_message(ids: dict[str, str], content: str) -> SubmitUserMessage:
    return SubmitUserMessage(id=new_id("cmd"), **ids, message_id=new_id("msg"), content=content)


async def publish_raw(pipeline: Pipeline, session_id: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            pipeline.catalogue.name(TopicName.COMMANDS), value, key=session_id.encode()
        )
    finally:
        await producer.stop()
