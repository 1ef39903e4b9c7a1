"""What a service holds, in words: "12 partitions of commands, turns" (its ready line)."""

from collections import Counter
from collections.abc import Iterable

from contracts.topics import TopicCatalogue
from services.runtime.record import PartitionId


def holdings(partitions: Iterable[PartitionId], catalogue: TopicCatalogue) -> str:
    """One consumer group's partitions, counted per topic, topics by their catalogue name."""
    per_topic = Counter(_short_name(p.topic, catalogue) for p in partitions)
    if not per_topic:
        return "no partitions"
    counts = set(per_topic.values())
    if len(counts) == 1:  # the usual case: the same count of each topic (co-partitioning)
        (count,) = counts
        return f"{_partitions(count)} of {', '.join(sorted(per_topic))}"
    return ", ".join(f"{_partitions(n)} of {topic}" for topic, n in sorted(per_topic.items()))


def _short_name(topic: str, catalogue: TopicCatalogue) -> str:
    known = catalogue.topic_of(topic)
    return known.value if known is not None else topic


def _partitions(count: int) -> str:
    return f"{count} partition" if count == 1 else f"{count} partitions"
