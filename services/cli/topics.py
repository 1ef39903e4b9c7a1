"""`agent-runtime topics create / describe`."""

from dataclasses import replace

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.table import Table

from services.admin.topic_configs import ConfigChangeFailed
from services.admin.topics import TopicMismatch, ensure_topics
from services.cli.errors import BrokerUnreachable, CliError
from services.cli.kafka_clients import consumer, partitions_of
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
        except (TopicMismatch, ConfigChangeFailed) as exc:
            raise CliError(str(exc)) from None
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            raise BrokerUnreachable(settings.kafka_bootstrap_servers, exc) from None
    console.print(report.summary())


async def describe_topics(settings: CliSettings, console: Console) -> None:
    table = Table("topic", "partitions", "messages (end - start)", "retention", "purpose")
    async with consumer(settings) as client:
        for spec in settings.topics.specs():
            partitions = await partitions_of(settings, spec.name)
            if not partitions:
                table.add_row(spec.name, "[red]missing[/]", "", "", spec.definition.purpose)
                continue
            tps = [TopicPartition(spec.name, p) for p in partitions]
            ends = await client.end_offsets(tps)
            starts = await client.beginning_offsets(tps)
            size = sum(ends[tp] - starts[tp] for tp in tps)
            colour = "" if len(partitions) == spec.partitions else "[red]"
            table.add_row(
                spec.name,
                f"{colour}{len(partitions)}",
                str(size),
                f"{int(spec.config['retention.ms']) // 3_600_000} h",
                spec.definition.purpose,
            )
    console.print(table)
