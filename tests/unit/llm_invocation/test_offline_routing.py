"""The offline provider's routing: which agent fits a request, and when to hand off."""

import pytest

from contracts.agents import AgentType, MessageRole
from contracts.llm import ChatMessage
from services.llm_invocation.providers.offline_routing import (
    classify,
    handoff_targets,
    last_user_text,
    route,
)
from tests.support.llm_invocation.requests import switch_agent_tool

pytestmark = pytest.mark.unit

SPECIALISTS = (AgentType.CODER, AgentType.ARCHITECT, AgentType.DEBUG, AgentType.ASK)
ALL_SPECIALISTS = frozenset(SPECIALISTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I get a traceback when I run the importer", AgentType.DEBUG),
        ("The build fails with error E1234", AgentType.DEBUG),
        ("The app crashes on start-up", AgentType.DEBUG),
        ("Found a bug: the total is off by one", AgentType.DEBUG),
        ("Why does my function crash with a TypeError exception?", AgentType.DEBUG),
        ("Implement a function that parses ISO dates", AgentType.CODER),
        ("Please write a Python script to rename files", AgentType.CODER),
        ("Refactor this class into smaller methods", AgentType.CODER),
        ("Add pagination to the list endpoint", AgentType.CODER),
        ("Design a scalable architecture for a chat system", AgentType.ARCHITECT),
        ("What are the trade-offs between Kafka and RabbitMQ?", AgentType.ARCHITECT),
        ("How should we design the storage layer?", AgentType.ARCHITECT),
        ("What is a monad?", AgentType.ASK),
        ("How many days are in a leap year?", AgentType.ASK),
        ("Hello there", AgentType.ASK),
        ("", AgentType.ASK),
    ],
)
def test_classify_finds_the_fitting_specialist(text: str, expected: AgentType) -> None:
    assert classify(text) is expected


def test_classify_matches_whole_words_only() -> None:
    # "address" contains "add", "debugger" contains "bug": neither is a keyword match
    assert classify("What is my IP address?") is AgentType.ASK
    assert classify("Which debugger do you like?") is AgentType.ASK


def test_classify_breaks_ties_towards_the_bug_report() -> None:
    # one coder word ("function") and one debug word ("error"): a bug report first
    assert classify("this function shows an error") is AgentType.DEBUG


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("I get a traceback in the parser", AgentType.DEBUG),
        ("Implement a retry decorator", AgentType.CODER),
        ("Design a scalable event store", AgentType.ARCHITECT),
        ("What is the capital of France?", AgentType.ASK),
    ],
)
def test_orchestrator_hands_off_to_the_fitting_specialist(text: str, target: AgentType) -> None:
    handoff = route(AgentType.ORCHESTRATOR, ALL_SPECIALISTS, text)
    assert handoff is not None
    assert handoff.target is target
    assert target.value in handoff.reason


@pytest.mark.parametrize("agent", SPECIALISTS)
@pytest.mark.parametrize(
    "text",
    [
        "I get a traceback in the parser",
        "Implement a retry decorator",
        "Design a scalable event store",
        "What is the capital of France?",
    ],
)
def test_the_fitting_agent_answers_itself_so_there_is_no_ping_pong(
    agent: AgentType, text: str
) -> None:
    everyone = frozenset(AgentType) - {agent}
    handoff = route(agent, everyone, text)
    if classify(text) is agent:
        assert handoff is None
    else:
        assert handoff is not None
        # where it hands off to, the request fits, so that agent answers
        assert route(handoff.target, frozenset(AgentType) - {handoff.target}, text) is None


def test_no_handoff_without_the_tool_or_without_a_user_message() -> None:
    assert route(AgentType.ORCHESTRATOR, frozenset(), "Implement a parser") is None
    assert route(AgentType.ORCHESTRATOR, ALL_SPECIALISTS, None) is None
    assert route(AgentType.ORCHESTRATOR, ALL_SPECIALISTS, "   ") is None


def test_an_unreachable_specialist_is_reached_through_the_orchestrator() -> None:
    # architect may hand off to orchestrator and coder only; a bug report needs debug
    handoff = route(AgentType.ARCHITECT, {AgentType.ORCHESTRATOR, AgentType.CODER}, "It crashes")
    assert handoff is not None
    assert handoff.target is AgentType.ORCHESTRATOR
    then = route(AgentType.ORCHESTRATOR, ALL_SPECIALISTS, "It crashes")
    assert then is not None
    assert then.target is AgentType.DEBUG


def test_an_unreachable_specialist_without_the_orchestrator_means_answering() -> None:
    assert route(AgentType.ARCHITECT, {AgentType.CODER}, "It crashes with an exception") is None


def test_handoff_targets_read_the_switch_agent_enum() -> None:
    tools = [switch_agent_tool(AgentType.CODER, AgentType.DEBUG)]
    assert handoff_targets(tools) == [AgentType.CODER, AgentType.DEBUG]
    assert handoff_targets([]) == []


def test_handoff_targets_ignore_unknown_agents() -> None:
    tool = switch_agent_tool(AgentType.CODER).model_copy(
        update={
            "parameters": {
                "type": "object",
                "properties": {"target": {"type": "string", "enum": ["coder", "wizard"]}},
            }
        }
    )
    assert handoff_targets([tool]) == [AgentType.CODER]


def test_last_user_text_is_the_latest_user_message() -> None:
    messages = [
        ChatMessage(role=MessageRole.SYSTEM, content="system"),
        ChatMessage(role=MessageRole.USER, content="first"),
        ChatMessage(role=MessageRole.ASSISTANT, content="answer"),
        ChatMessage(role=MessageRole.USER, content="second"),
        ChatMessage(role=MessageRole.ASSISTANT, content="handing off"),
    ]
    assert last_user_text(messages) == "second"
    assert last_user_text(messages[:1]) is None
