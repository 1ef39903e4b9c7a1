"""Domain metrics derived by the audit from the facts it reads: what each fact counts, once."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from contracts.agents import AgentType
from contracts.llm import LLMCompleted
from contracts.mid_turn import CancellationReason
from contracts.session_events import (
    AgentSwitched,
    CommandRejected,
    ConversationContext,
    SessionClosed,
    TurnCancelled,
    TurnCompleted,
    TurnStarted,
    UserMessageAccepted,
)
from services.audit.fact_metrics import FactMetrics
from services.audit.handler import AuditHandler
from services.audit.llm_prices import PriceFileError, load_prices, parse_prices
from services.audit.redaction import RedactionPolicy
from tests.support.audit.conversation import conversation
from tests.support.audit.fakes import CATALOGUE, FakeLog, FakeSink, kafka_record

pytestmark = pytest.mark.unit

PRICES = parse_prices(
    '[models."offline-1"]\ninput_per_million_usd = 2.0\noutput_per_million_usd = 8.0\n', "test"
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
S = {"session_id": "s-1", "tenant_id": "acme"}
CTX = ConversationContext(messages=[], switch_count=0)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_conversation_counts_each_fact_once_and_a_replay_counts_nothing() -> None:
    registry = CollectorRegistry()
    handler = AuditHandler(
        topics=CATALOGUE,
        policy=RedactionPolicy(),
        log=FakeLog(),
        sink=FakeSink(),
        observer=FactMetrics(registry, PRICES),
    )
    facts = conversation("s-1")
    for replay in (False, True):  # the same records again: a redelivery after a crash
        for offset, fact in enumerate(facts):
            await handler(kafka_record(fact, offset))
        assert replay or value(registry, "agent_runtime_turns_completed_total", agent="debug") == 1

    messages = [f.message for f in facts]
    started = [m for m in messages if isinstance(m, TurnStarted) and m.step == 0]
    assert value(registry, "agent_runtime_turns_started_total", agent="orchestrator") == len(
        started
    )
    assert value(registry, "agent_runtime_turns_completed_total", agent="debug") == 1
    assert (
        value(
            registry,
            "agent_runtime_agent_switches_total",
            from_agent="orchestrator",
            to_agent="debug",
            initiator="orchestration",
        )
        == 1
    )
    [rejected] = [m for m in messages if isinstance(m, CommandRejected)]
    assert (
        value(
            registry,
            "agent_runtime_commands_rejected_total",
            reason=rejected.reason.value,
            command=rejected.rejected_command_type,
        )
        == 1
    )
    completed_llm = [m for m in messages if isinstance(m, LLMCompleted)]
    input_tokens = sum(m.usage.prompt_tokens for m in completed_llm)
    output_tokens = sum(m.usage.completion_tokens for m in completed_llm)
    labels = {"model": "offline-1", "tenant": "acme"}
    assert value(registry, "agent_runtime_llm_tokens_total", **labels, kind="input") == (
        input_tokens
    )
    assert value(registry, "agent_runtime_llm_tokens_total", **labels, kind="output") == (
        output_tokens
    )
    assert value(registry, "agent_runtime_llm_cost_usd_total", **labels) == pytest.approx(
        (input_tokens * 2.0 + output_tokens * 8.0) / 1e6
    )
    # The duration is the one of the completed turn, from its message's acceptance.
    accepted = next(m for m in messages if isinstance(m, UserMessageAccepted))
    done = next(m for m in messages if isinstance(m, TurnCompleted))
    assert value(registry, "agent_runtime_turn_duration_seconds_count", agent="debug") == 1
    assert value(
        registry, "agent_runtime_turn_duration_seconds_sum", agent="debug"
    ) == pytest.approx((done.occurred_at - accepted.occurred_at).total_seconds())


def test_queue_depth_follows_queued_messages_until_they_start_or_are_dropped() -> None:
    registry = CollectorRegistry()
    metrics = FactMetrics(registry, PRICES)

    def accepted(message_id: str, minute: int, queued: bool) -> UserMessageAccepted:
        return UserMessageAccepted(
            id=f"e-{message_id}",
            **S,
            occurred_at=T0 + timedelta(minutes=minute),
            message_id=message_id,
            seq=minute + 1,
            content="hi",
            queued=queued,
        )

    def started(message_id: str, turn_id: str) -> TurnStarted:
        return TurnStarted(
            id=f"e-start-{turn_id}",
            **S,
            turn_id=turn_id,
            step=0,
            agent=AgentType.ASK,
            user_message_id=message_id,
            context=CTX,
        )

    depth = "agent_runtime_mid_turn_queue_depth"
    metrics.observe(accepted("m1", 0, queued=False))
    metrics.observe(started("m1", "t1"))
    metrics.observe(accepted("m2", 1, queued=True))
    metrics.observe(accepted("m3", 2, queued=True))
    assert value(registry, depth) == 2
    assert value(registry, "agent_runtime_messages_queued_total") == 2
    metrics.observe(started("m2", "t2"))  # the next turn takes the first queued message
    assert value(registry, depth) == 1
    metrics.observe(
        TurnCancelled(
            id="e-cancel",
            **S,
            turn_id="t3",
            user_message_id="m3",
            reason=CancellationReason.CANCELLED,
            queued=True,
        )
    )
    assert value(registry, depth) == 0
    assert (
        value(registry, "agent_runtime_turns_cancelled_total", agent="none", reason="cancelled")
        == 1
    )
    metrics.observe(accepted("m4", 3, queued=True))
    metrics.observe(SessionClosed(id="e-close", **S, reason="done"))  # empties the queue
    assert value(registry, depth) == 0


def test_a_hop_is_not_a_new_turn_and_a_switch_by_the_user_is_labelled_so() -> None:
    registry = CollectorRegistry()
    metrics = FactMetrics(registry, PRICES)
    hop = TurnStarted(
        id="e-hop",
        **S,
        turn_id="t1",
        step=1,
        agent=AgentType.CODER,
        user_message_id="m1",
        context=CTX,
    )
    metrics.observe(hop)
    assert value(registry, "agent_runtime_turns_started_total", agent="coder") == 0
    metrics.observe(
        AgentSwitched(
            id="e-sw",
            **S,
            from_agent=AgentType.ORCHESTRATOR,
            to_agent=AgentType.ARCHITECT,
            reason="user asked",
            switch_count=1,
            initiated_by="user",
        )
    )
    assert (
        value(
            registry,
            "agent_runtime_agent_switches_total",
            from_agent="orchestrator",
            to_agent="architect",
            initiator="user",
        )
        == 1
    )


def test_an_unpriced_model_is_counted_as_such_and_costs_nothing() -> None:
    registry = CollectorRegistry()
    metrics = FactMetrics(registry, PRICES)
    metrics.observe(
        LLMCompleted(
            id="r1",
            **S,
            invocation_id="i1",
            turn_id="t1",
            step=0,
            agent=AgentType.ASK,
            content="ok",
            usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            finish_reason="stop",
            provider="openai",
            model="unknown-model",
        )
    )
    assert value(registry, "agent_runtime_llm_unpriced_calls_total", model="unknown-model") == 1
    assert (
        value(
            registry,
            "agent_runtime_llm_tokens_total",
            model="unknown-model",
            tenant="acme",
            kind="input",
        )
        == 10
    )
    assert (
        value(registry, "agent_runtime_llm_cost_usd_total", model="unknown-model", tenant="acme")
        == 0
    )


def test_the_packaged_price_file_loads_and_a_bad_one_names_the_field() -> None:
    assert "offline-deterministic-1" in load_prices().models
    with pytest.raises(PriceFileError, match=r"models\.m\.input_per_million_usd"):
        parse_prices("[models.m]\ninput_per_million_usd = -1\noutput_per_million_usd = 1\n", "f")


@pytest.mark.parametrize(
    ("value", "problem"),
    [("inf", "finite"), ("nan", "finite"), ('"0.15"', "valid number"), ("true", "valid number")],
)
def test_a_price_that_is_not_a_finite_number_stops_the_start(value: str, problem: str) -> None:
    text = f"[models.m]\ninput_per_million_usd = {value}\noutput_per_million_usd = 1\n"
    with pytest.raises(PriceFileError, match=rf"models\.m\.input_per_million_usd: .*{problem}"):
        parse_prices(text, "f")


def test_a_price_file_that_is_not_utf8_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_bytes(b"\xff\xfe[models]\n")
    with pytest.raises(PriceFileError, match=rf"{path}: not UTF-8 text"):
        load_prices(path)


def test_a_price_file_nested_past_the_recursion_limit_is_refused() -> None:
    from tests.support.recursion import default_recursion_limit

    # A RecursionError escaped tomllib: a traceback and exit 1 instead of the file named.
    text = "x = " + "[" * 100_000 + "]" * 100_000
    with default_recursion_limit(), pytest.raises(PriceFileError, match="nested too deeply"):
        parse_prices(text, "prices.toml")
