"""`agent-runtime topics create / describe`."""

from dataclasses import dataclass, replace

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.text import Text

from services.admin.topic_configs import ConfigChangeFailed
from services.admin.topics import TopicCreationFailed, TopicMismatch, ensure_topics
from services.cli.errors import BrokerUnreachable, CliError, NotAuthorized
from services.cli.kafka_clients import consumer, partitions_of
from services.cli.output import Output
from services.cli.settings import CliSettings


async def create_topics(settings: CliSettings, partitions: int | None, console: Console) -> None:
    catalogue = replace(settings.topics, partitions=partitions or settings.topics.partitions)
    with console.status(f"creating topics on {settings.kafka_bootstrap_servers}…"):
        try:
            report = await ensure_topics(
                settings.kafka_bootstrap_servers,
                catalogue.specs(),
                security=settings,
                client_id=settings.client_id("cli"),
            )
        except (TopicMismatch, ConfigChangeFailed, TopicCreationFailed) as exc:
            raise CliError(str(exc)) from None
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    console.print(report.summary(), highlight=False)
    for line in report.details():
        console.print(Text(line))  # as printed, not read as markup


@dataclass(frozen=True, slots=True)
class TopicState:
    topic: str
    catalogue_name: str
    exists: bool
    partitions: int
    expected_partitions: int
    messages: int
    """End minus start offsets, summed over the partitions."""
    retention_ms: int
    purpose: str
    authorized: bool = True
    """False: the ACLs do not let this principal describe it (whether it exists is unknown)."""


async def describe_topics(settings: CliSettings, out: Output) -> None:
    states = await topic_states(settings)
    if out.as_json:
        out.document(states)
        return
    out.table(
        ("topic", "partitions", "messages (end - start)", "retention", "purpose"),
        (
            (
                state.topic,
                _partitions_cell(state, out.for_people),
                state.messages if state.exists else None,
                f"{state.retention_ms // 3_600_000} h" if state.exists else None,
                state.purpose,
            )
            for state in states
        ),
    )


def _partitions_cell(state: TopicState, styled: bool) -> Text | str:
    if not state.authorized:
        return Text("not authorized", style="red" if styled else "")
    if not state.exists:
        return Text("missing", style="red" if styled else "")
    wrong = styled and state.partitions != state.expected_partitions
    return Text(str(state.partitions), style="red" if wrong else "")


async def topic_states(settings: CliSettings) -> list[TopicState]:
    states = []
    async with consumer(settings) as client:
        for spec in settings.topics.specs():
            try:
                partitions = await partitions_of(settings, spec.name)
            except NotAuthorized:
                # One row per topic all the same: a principal granted a part of the catalogue
                # (a client: commands, session-events, llm-stream) sees that part.
                partitions, authorized = [], False
            else:
                authorized = True
            size = 0
            if partitions:
                tps = [TopicPartition(spec.name, p) for p in partitions]
                ends = await client.end_offsets(tps)
                starts = await client.beginning_offsets(tps)
                size = sum(ends[tp] - starts[tp] for tp in tps)
            states.append(
                TopicState(
                    topic=spec.name,
                    catalogue_name=spec.definition.topic.value,
                    exists=bool(partitions),
                    partitions=len(partitions),
                    expected_partitions=spec.partitions,
                    messages=size,
                    retention_ms=int(spec.config["retention.ms"]),
                    purpose=spec.definition.purpose,
                    authorized=authorized,
                )
            )
    return states
