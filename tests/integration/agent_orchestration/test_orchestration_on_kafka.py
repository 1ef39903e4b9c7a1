"""agent-orchestration in this process against the real broker: facts in, decisions out."""

import json
from collections.abc import AsyncIterator

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.base import Message, derive_id
from contracts.dead_letters import DeadLetter
from contracts.llm import FinishReason, LLMCompleted, LLMFailed, LLMRequested, ToolCall
from contracts.session_events import (
    AgentSwitched,
    ContextMessage,
    ConversationContext,
    SessionCreated,
    SwitchInitiator,
    TurnStarted,
)
from contracts.topics import TopicCatalogue, TopicName
from contracts.turns import CompleteTurn, SwitchAgentForTurn
from tests.integration.agent_orchestration.service_harness import (
    provisioned_topics,
    running,
    settings_for,
    wait_for_commits,
)
from tests.integration.service_harness import TopicReader, publish, publish_raw

pytestmark = pytest.mark.integration

SESSION, TENANT = "session-it-1", "tenant-it"
CONTEXT = ConversationContext(
    system_prompt="Be brief.",
    messages=[ContextMessage(seq=1, role=MessageRole.USER, content="Implement a stack in Go.")],
    switch_count=0,
)


@pytest.fixture
async def topics(kafka_bootstrap_servers: str, unique_suffix: str) -> AsyncIterator[TopicCatalogue]:
    async with provisioned_topics(kafka_bootstrap_servers, f"t-{unique_suffix}.") as catalogue:
        yield catalogue


def _turn_started(turn_id: str) -> TurnStarted:
    return TurnStarted(
        id=f"event-start-{turn_id}",
        session_id=SESSION,
        tenant_id=TENANT,
        turn_id=turn_id,
        step=0,
        agent=AgentType.ORCHESTRATOR,
        user_message_id=f"message-{turn_id}",
        context=CONTEXT,
    )


def _completed(
    turn_id: str, step: int, agent: AgentType, target: str | None, session_id: str = SESSION
) -> LLMCompleted:
    """What llm-invocation would answer for (turn, step): a switch to `target`, or text."""
    invocation_id = derive_id("invocation", turn_id, step)
    arguments = json.dumps({"target": target, "reason": "fits"})
    return LLMCompleted(
        id=derive_id("llm-result", invocation_id),
        session_id=session_id,
        tenant_id=TENANT,
        invocation_id=invocation_id,
        turn_id=turn_id,
        step=step,
        agent=agent,
        content="" if target else "Here is the answer.",
        tool_calls=[ToolCall(id="call-1", name="switch_agent", arguments=arguments)]
        if target
        else [],
        finish_reason=FinishReason.TOOL_CALLS if target else FinishReason.STOP,
        provider="test",
        model="test-model",
    )


def _switched(command: SwitchAgentForTurn, switch_count: int) -> AgentSwitched:
    """What session-commands would emit for `command`: the new agent runs step + 1."""
    return AgentSwitched(
        id=derive_id("event", command.id, 0),
        session_id=command.session_id,
        tenant_id=command.tenant_id,
        from_agent=command.from_agent,
        to_agent=command.target_agent,
        reason=command.reason,
        switch_count=switch_count,
        initiated_by=SwitchInitiator.ORCHESTRATION,
        turn_id=command.turn_id,
        step=command.step + 1,
        context=CONTEXT.model_copy(update={"switch_count": switch_count}),
    )


async def test_turn_started_becomes_an_llm_request(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    bootstrap = kafka_bootstrap_servers
    settings = settings_for(bootstrap, topics.prefix, f"orch-{unique_suffix}")
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.LLM_REQUESTS)) as requests,
    ):
        await publish(bootstrap, topics.name(TopicName.SESSION_EVENTS), _turn_started("turn-a"))

        [request] = await requests.wait_for_count(1, "the LLMRequested")

    assert isinstance(request, LLMRequested)
    assert request.invocation_id == derive_id("invocation", "turn-a", 0)
    assert (request.session_id, request.tenant_id, request.agent) == (
        SESSION,
        TENANT,
        AgentType.ORCHESTRATOR,
    )
    assert [m.role for m in request.messages] == ["system", "system", "user"]
    [tool] = request.tools
    assert tool.parameters["properties"]["target"]["enum"] == ["coder", "architect", "debug", "ask"]


async def test_facts_it_ignores_are_committed_too(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    bootstrap = kafka_bootstrap_servers
    group = f"orch-{unique_suffix}"
    source = topics.name(TopicName.SESSION_EVENTS)
    created = SessionCreated(
        id="event-created",
        session_id=SESSION,
        tenant_id=TENANT,
        title="",
        description="",
        system_prompt="",
        agent=AgentType.ORCHESTRATOR,
        metadata={},
    )
    user_switch = AgentSwitched(
        id="event-user-switch",
        session_id=SESSION,
        tenant_id=TENANT,
        from_agent=AgentType.ORCHESTRATOR,
        to_agent=AgentType.ASK,
        reason="",
        switch_count=1,
        initiated_by=SwitchInitiator.USER,
    )
    async with (
        running(settings_for(bootstrap, topics.prefix, group)),
        TopicReader(bootstrap, topics.name(TopicName.LLM_REQUESTS)) as requests,
    ):
        await publish(bootstrap, source, created, user_switch, _turn_started("turn-c"))

        await requests.wait_for_count(1, "the LLMRequested")
        await wait_for_commits(bootstrap, group, source, 3)

    assert len(requests.messages) == 1  # the two other facts asked for nothing


async def test_a_switch_call_becomes_switch_agent_for_turn(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    bootstrap = kafka_bootstrap_servers
    settings = settings_for(bootstrap, topics.prefix, f"orch-{unique_suffix}")
    result = _completed("turn-a", 0, AgentType.ORCHESTRATOR, "coder")
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.TURNS)) as turns,
    ):
        await publish(bootstrap, topics.name(TopicName.LLM_RESULTS), result)

        [command] = await turns.wait_for_count(1, "the SwitchAgentForTurn")

    assert isinstance(command, SwitchAgentForTurn)
    assert (command.from_agent, command.target_agent, command.reason) == (
        AgentType.ORCHESTRATOR,
        AgentType.CODER,
        "fits",
    )
    assert command.id == derive_id("turn-command", result.invocation_id)
    assert (command.turn_id, command.step) == ("turn-a", 0)


async def test_ping_pong_between_agents_stops_at_the_hop_bound(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    # Plays session-commands and a model that always hands off: coder <-> orchestrator.
    bootstrap = kafka_bootstrap_servers
    settings = settings_for(bootstrap, topics.prefix, f"orch-{unique_suffix}")
    bound = settings.max_hops_per_turn
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.LLM_REQUESTS)) as requests,
        TopicReader(bootstrap, topics.name(TopicName.TURNS)) as turns,
    ):
        await publish(bootstrap, topics.name(TopicName.SESSION_EVENTS), _turn_started("turn-p"))
        for hop in range(bound + 1):
            [*_, request] = await requests.wait_for_count(hop + 1, f"request of step {hop}")
            assert isinstance(request, LLMRequested)
            assert request.step == hop
            target = "orchestrator" if request.agent is AgentType.CODER else "coder"
            # The model hands off even where the tool is withheld (the last step).
            result = _completed("turn-p", hop, request.agent, target)
            await publish(bootstrap, topics.name(TopicName.LLM_RESULTS), result)
            [*_, command] = await turns.wait_for_count(hop + 1, f"turn command of step {hop}")
            if isinstance(command, SwitchAgentForTurn):
                await publish(
                    bootstrap, topics.name(TopicName.SESSION_EVENTS), _switched(command, hop + 1)
                )

    steps = [m for m in requests.messages if isinstance(m, LLMRequested)]
    assert [r.step for r in steps] == list(range(bound + 1))
    offered = [[t.name for t in r.tools] for r in steps]
    assert all("switch_agent" in names for names in offered[:-1])
    assert "switch_agent" not in offered[-1]  # the last agent is not offered switch_agent
    commands = turns.messages
    assert [type(c) for c in commands] == [SwitchAgentForTurn] * bound + [CompleteTurn]
    final = commands[-1]
    assert isinstance(final, CompleteTurn)
    assert final.note is not None
    assert f"bound of {bound}" in final.note
    assert final.content  # the user still gets an answer


async def test_a_replay_from_offset_zero_produces_identical_ids(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    bootstrap = kafka_bootstrap_servers
    switch = _completed("turn-r", 0, AgentType.ORCHESTRATOR, "debug")
    failed = LLMFailed(
        id="result-failed",
        session_id="session-it-2",
        tenant_id=TENANT,
        invocation_id=derive_id("invocation", "turn-f", 0),
        turn_id="turn-f",
        step=0,
        agent=AgentType.ASK,
        error_class="timeout",
        retryable=True,
    )
    await publish(bootstrap, topics.name(TopicName.SESSION_EVENTS), _turn_started("turn-r"))
    # The same result twice, as a redelivery brings it.
    await publish(bootstrap, topics.name(TopicName.LLM_RESULTS), switch, switch, failed)
    outputs_per_run = 4  # one request; two (identical) switches and a FailTurn

    async with (
        TopicReader(bootstrap, topics.name(TopicName.LLM_REQUESTS)) as requests,
        TopicReader(bootstrap, topics.name(TopicName.TURNS)) as turns,
    ):
        for run, group in enumerate((f"orch-a-{unique_suffix}", f"orch-b-{unique_suffix}")):
            # A new consumer group reads everything again: every input is redelivered.
            async with running(settings_for(bootstrap, topics.prefix, group)):
                await requests.wait_for_count(run + 1, f"run {run}: the LLMRequested")
                await turns.wait_for_count(3 * (run + 1), f"run {run}: the turn commands")
            if run == 0:
                first_run = _ids([*requests.messages, *turns.messages])

    assert len(first_run) == outputs_per_run
    all_runs = _ids([*requests.messages, *turns.messages])
    assert all_runs == sorted(first_run * 2)  # the second run repeated every id exactly
    assert [kind for kind, *_ in first_run] == [
        "FailTurn",
        "LLMRequested",
        "SwitchAgentForTurn",
        "SwitchAgentForTurn",
    ]
    assert first_run[2] == first_run[3]  # the duplicated result gave the same command id
    assert first_run[0] == (
        "FailTurn",
        derive_id("turn-command", failed.invocation_id),
        failed.invocation_id,
    )
    assert first_run[1][2] == derive_id("invocation", "turn-r", 0)


def _ids(messages: list[Message]) -> list[tuple[str, str, str]]:
    return sorted((type(m).__name__, m.id, str(getattr(m, "invocation_id", ""))) for m in messages)


async def test_a_poison_record_is_dead_lettered_and_the_session_keeps_flowing(
    kafka_bootstrap_servers: str, topics: TopicCatalogue, unique_suffix: str
) -> None:
    bootstrap = kafka_bootstrap_servers
    settings = settings_for(bootstrap, topics.prefix, f"orch-{unique_suffix}")
    source = topics.name(TopicName.SESSION_EVENTS)
    async with (
        running(settings),
        TopicReader(bootstrap, topics.name(TopicName.DEAD_LETTERS)) as dead_letters,
        TopicReader(bootstrap, topics.name(TopicName.LLM_REQUESTS)) as requests,
    ):
        await publish_raw(bootstrap, source, SESSION.encode(), b"{not json")
        await publish(bootstrap, source, _turn_started("turn-after-poison"))

        [letter] = await dead_letters.wait_for_count(1, "the dead letter")
        [request] = await requests.wait_for_count(1, "the request after the poison record")

    assert isinstance(letter, DeadLetter)
    assert (letter.origin_topic, letter.session_id) == (source, SESSION)
    assert isinstance(request, LLMRequested)
    assert request.turn_id == "turn-after-poison"
