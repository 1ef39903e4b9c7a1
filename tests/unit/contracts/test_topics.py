import pytest

from contracts.registry import TOPIC_MESSAGES
from contracts.topics import DEFAULT_PARTITIONS, TopicCatalogue, TopicName, UnexpectedTopic

pytestmark = pytest.mark.unit


def test_every_topic_shares_the_partition_count() -> None:
    specs = TopicCatalogue().specs()
    assert {s.partitions for s in specs} == {DEFAULT_PARTITIONS}
    assert {s.name for s in specs} == {f"agent-runtime.{t.value}" for t in TopicName}


def test_prefix_is_configurable_and_reversible() -> None:
    catalogue = TopicCatalogue(prefix="test-1.", partitions=3)
    assert catalogue.name(TopicName.LLM_STREAM) == "test-1.llm-stream"
    assert catalogue.topic_of("test-1.llm-stream") is TopicName.LLM_STREAM
    assert catalogue.topic_of("other.llm-stream") is None


def test_a_renamed_dead_letter_topic_is_named_and_recognised() -> None:
    catalogue = TopicCatalogue(prefix="p.", dead_letter_topic="shared.dlq")
    assert catalogue.name(TopicName.DEAD_LETTERS) == "shared.dlq"
    assert catalogue.topic_of("shared.dlq") is TopicName.DEAD_LETTERS
    assert catalogue.topic_of("p.dead-letters") is None  # not this deployment's name
    assert catalogue.spec(TopicName.DEAD_LETTERS).name == "shared.dlq"


def test_a_reader_accepts_only_its_own_input_topics() -> None:
    catalogue = TopicCatalogue(prefix="p.")
    inputs = (TopicName.COMMANDS, TopicName.TURNS)
    assert catalogue.names(inputs) == ("p.commands", "p.turns")
    assert catalogue.input_topic("p.turns", inputs) is TopicName.TURNS
    with pytest.raises(UnexpectedTopic, match=r"p\.commands, p\.turns"):
        catalogue.input_topic("p.session-events", inputs)
    with pytest.raises(UnexpectedTopic):
        catalogue.input_topic("other.commands", inputs)


def test_token_stream_has_the_shortest_retention() -> None:
    specs = {s.definition.topic: int(s.config["retention.ms"]) for s in TopicCatalogue().specs()}
    assert specs[TopicName.LLM_STREAM] == min(specs.values())


def test_every_topic_carries_messages() -> None:
    assert set(TOPIC_MESSAGES) == set(TopicName)
