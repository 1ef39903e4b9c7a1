"""The topic catalogue: every topic of the pipeline, who writes it, who reads it, how it is kept.

All topics are keyed by session id and share one partition count, so partition *p* of every
topic holds the same sessions (co-partitioning): session-commands owns partition *p* of
`commands` and `turns` together, with range assignment.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

DEFAULT_PREFIX: Final = "agent-runtime."
DEFAULT_PARTITIONS: Final = 12

_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 24 * _HOUR_MS


class TopicName(StrEnum):
    COMMANDS = "commands"
    TURNS = "turns"
    SESSION_EVENTS = "session-events"
    LLM_REQUESTS = "llm-requests"
    LLM_RESULTS = "llm-results"
    LLM_STREAM = "llm-stream"
    AUDIT = "audit"
    DEAD_LETTERS = "dead-letters"


class Service(StrEnum):
    UPSTREAM = "upstream"
    SESSION_COMMANDS = "session-commands"
    AGENT_ORCHESTRATION = "agent-orchestration"
    LLM_INVOCATION = "llm-invocation"
    TOOL_INVOCATION = "tool-invocation"
    AUDIT = "audit"
    EXPIRY_JOB = "session-expiry"
    CLIENTS = "clients"
    PIPELINES = "observability-pipelines"
    OPERATORS = "operators"


ALL_SERVICES: Final = (
    Service.SESSION_COMMANDS,
    Service.AGENT_ORCHESTRATION,
    Service.LLM_INVOCATION,
    Service.TOOL_INVOCATION,
    Service.AUDIT,
)


@dataclass(frozen=True, slots=True)
class TopicDefinition:
    topic: TopicName
    purpose: str
    retention_ms: int
    producers: tuple[Service, ...]
    consumers: tuple[Service, ...]
    cleanup_policy: str = "delete"
    key: str = "session id (UTF-8)"


DEFINITIONS: Final[Mapping[TopicName, TopicDefinition]] = {
    d.topic: d
    for d in (
        TopicDefinition(
            TopicName.COMMANDS,
            "External commands from upstream systems (create, submit message, switch, close…).",
            7 * _DAY_MS,
            producers=(Service.UPSTREAM, Service.OPERATORS),
            consumers=(Service.SESSION_COMMANDS, Service.AUDIT),
        ),
        TopicDefinition(
            TopicName.TURNS,
            "Internal commands from orchestration, tool-invocation and the expiry job; ACL "
            "write-restricted.",
            7 * _DAY_MS,
            producers=(Service.AGENT_ORCHESTRATION, Service.TOOL_INVOCATION, Service.EXPIRY_JOB),
            consumers=(Service.SESSION_COMMANDS, Service.AUDIT),
        ),
        TopicDefinition(
            TopicName.SESSION_EVENTS,
            "Facts from the single writer of session state, incl. CommandRejected.",
            7 * _DAY_MS,
            producers=(Service.SESSION_COMMANDS,),
            # llm-invocation: to abandon calls of turns that ended (session_watch.py).
            # tool-invocation: runs ToolCallRequested of `mcp:` tools, stops them on a cancel.
            consumers=(
                Service.AGENT_ORCHESTRATION,
                Service.LLM_INVOCATION,
                Service.TOOL_INVOCATION,
                Service.AUDIT,
                Service.CLIENTS,
            ),
        ),
        TopicDefinition(
            TopicName.LLM_REQUESTS,
            "One model call per turn step, with the full prompt.",
            3 * _DAY_MS,
            producers=(Service.AGENT_ORCHESTRATION,),
            consumers=(Service.LLM_INVOCATION, Service.AUDIT),
        ),
        TopicDefinition(
            TopicName.LLM_RESULTS,
            "LLMCompleted / LLMFailed per invocation.",
            7 * _DAY_MS,
            producers=(Service.LLM_INVOCATION,),
            consumers=(Service.AGENT_ORCHESTRATION, Service.AUDIT),
        ),
        TopicDefinition(
            TopicName.LLM_STREAM,
            "Token deltas numbered per invocation, for live clients; short retention.",
            _HOUR_MS,
            producers=(Service.LLM_INVOCATION,),
            consumers=(Service.CLIENTS,),
        ),
        TopicDefinition(
            TopicName.AUDIT,
            "One immutable CloudEvent (structured mode) per fact, for observability pipelines.",
            30 * _DAY_MS,
            producers=(Service.AUDIT,),
            consumers=(Service.PIPELINES,),
        ),
        TopicDefinition(
            TopicName.DEAD_LETTERS,
            "Records a consumer could not handle, with origin, error and original bytes.",
            30 * _DAY_MS,
            producers=ALL_SERVICES,
            consumers=(Service.AUDIT, Service.OPERATORS),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as it is created on a cluster: full name, partition count and configs."""

    definition: TopicDefinition
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


class UnexpectedTopic(ValueError):
    """A record from a topic its consumer does not read: a deployment error (dead-lettered)."""


@dataclass(frozen=True, slots=True)
class TopicCatalogue:
    """The concrete topic names and settings for one deployment (prefix, partitions, durability).

    The one way to spell a topic's full name: services get theirs from
    `RuntimeSettings.topics`, the CLI, the admin tool and the tests from the same object.
    `dead_letter_topic` renames the dead-letters topic (a deployment may share one).
    Replication factor and `min.insync.replicas` default to 1 for a single local broker; a
    production cluster uses 3 and 2, so an `acks=all` publish survives the loss of one broker.
    """

    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    min_insync_replicas: int = 1
    dead_letter_topic: str | None = None

    def name(self, topic: TopicName) -> str:
        if topic is TopicName.DEAD_LETTERS and self.dead_letter_topic is not None:
            return self.dead_letter_topic
        return f"{self.prefix}{topic.value}"

    def names(self, topics: Collection[TopicName]) -> tuple[str, ...]:
        return tuple(self.name(topic) for topic in topics)

    def topic_of(self, full_name: str) -> TopicName | None:
        if self.dead_letter_topic is not None and full_name == self.dead_letter_topic:
            return TopicName.DEAD_LETTERS
        if not full_name.startswith(self.prefix):
            return None
        try:
            topic = TopicName(full_name[len(self.prefix) :])
        except ValueError:
            return None
        return topic if self.name(topic) == full_name else None

    def input_topic(self, full_name: str, inputs: Collection[TopicName]) -> TopicName:
        """The catalogue name of a record's topic, which must be one of the reader's `inputs`."""
        topic = self.topic_of(full_name)
        if topic is None or topic not in inputs:
            expected = ", ".join(self.names(inputs))
            raise UnexpectedTopic(f"{full_name!r} is not read here (reads {expected})")
        return topic

    def spec(self, topic: TopicName) -> TopicSpec:
        definition = DEFINITIONS[topic]
        return TopicSpec(
            definition=definition,
            name=self.name(topic),
            partitions=self.partitions,
            replication_factor=self.replication_factor,
            config={
                "cleanup.policy": definition.cleanup_policy,
                "retention.ms": str(definition.retention_ms),
                "min.insync.replicas": str(self.min_insync_replicas),
                # An out-of-sync replica never becomes leader: acknowledged records are not lost.
                "unclean.leader.election.enable": "false",
            },
        )

    def specs(self) -> list[TopicSpec]:
        return [self.spec(topic) for topic in TopicName]
