import json
import logging
from collections.abc import Iterator
from typing import cast

import pytest
from aiokafka import TopicPartition

from contracts.topics import TopicCatalogue
from services.runtime.assignment_summary import holdings
from services.runtime.keyed_consumer import KeyOrderedConsumer
from services.runtime.rebalance import DrainingRebalanceListener
from services.runtime.record import PartitionId
from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings
from services.runtime.telemetry.log_context import configure_logging

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    # A tool run in this process before (the ACL tool's `main()`) may have quieted aiokafka
    # for the rest of it: these tests are about what the runtime's own configuration does.
    aiokafka = logging.getLogger("aiokafka")
    aiokafka_level = aiokafka.level
    aiokafka.setLevel(logging.NOTSET)
    yield
    root.setLevel(level)
    root.handlers = handlers
    aiokafka.setLevel(aiokafka_level)


def _written(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def _emit() -> None:
    logging.getLogger("aiokafka.consumer.group_coordinator").info(
        "Setting newly assigned partitions {TopicPartition(topic='t', partition=0)}"
    )
    logging.getLogger("agent_runtime.faststream.svc").info("FastStream app starting...")
    logging.getLogger("aiokafka.conn").warning("Unable to connect to node 1")
    logging.getLogger("services.runtime.service_runtime").info("svc ready: 1 partition of t")


def test_library_chatter_is_debug_and_warnings_stay(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("svc", level="INFO")
    _emit()
    lines = _written(capsys)
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("WARNING", "aiokafka.conn"),
        ("INFO", "services.runtime.service_runtime"),
    ]
    for line in lines:  # the same keys in every line, null when unknown
        assert line.items() >= {"session_id": None, "turn_id": None, "trace_id": None}.items()


def test_at_debug_the_chatter_is_written_marked_debug(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("svc", level="DEBUG")
    _emit()
    levels = [line["level"] for line in _written(capsys)]
    assert levels == ["DEBUG", "DEBUG", "WARNING", "INFO"]


def test_faststreams_reminder_that_it_creates_no_topics_is_chatter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The runtime turns FastStream's topic creation off on purpose (it would create a missing
    # topic with one partition); FastStream then warns at every subscriber start.
    configure_logging("svc", level="INFO")
    faststream = logging.getLogger("agent_runtime.faststream.svc")
    faststream.warning("Auto create topics is disabled. Make sure the topics exist.")
    faststream.warning("Failed to create topic t: TopicAuthorizationFailedError")
    assert [line["message"] for line in _written(capsys)] == [
        "Failed to create topic t: TopicAuthorizationFailedError"
    ]


def test_holdings_name_topics_by_catalogue_name() -> None:
    catalogue = TopicCatalogue(prefix="p.")
    both = [PartitionId(f"p.{t}", n) for t in ("commands", "turns") for n in range(12)]
    assert holdings(both, catalogue) == "12 partitions of commands, turns"
    uneven = [PartitionId("p.commands", 0), PartitionId("other", 1), PartitionId("other", 2)]
    assert holdings(uneven, catalogue) == "1 partition of commands, 2 partitions of other"
    assert holdings([], catalogue) == "no partitions"


class _Engine:
    def __init__(self) -> None:
        self.assigned: list[list[PartitionId]] = []

    def on_partitions_assigned(self, partitions: list[PartitionId]) -> None:
        self.assigned.append(partitions)


async def test_a_rebalance_after_the_first_assignment_is_reported_with_what_is_held() -> None:
    engine = _Engine()
    rebalanced: list[list[PartitionId]] = []
    listener = DrainingRebalanceListener(cast(KeyOrderedConsumer, engine), rebalanced.append)
    first = [TopicPartition("p.commands", n) for n in range(12)]
    await listener.on_partitions_assigned(first)
    assert rebalanced == []  # the start: the ready line says what is held
    await listener.on_partitions_assigned(first[:6])
    await listener.on_partitions_assigned(first)
    halved = [PartitionId("p.commands", n) for n in range(6)]
    assert rebalanced == [halved, [PartitionId("p.commands", n) for n in range(12)]]
    assert engine.assigned[1] == halved  # the engine still gets every assignment first


def test_a_hot_spare_given_partitions_before_it_was_ready_writes_only_its_ready_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = ServiceRuntime("audit", RuntimeSettings(topic_prefix="t."), configure_logs=False)
    given = [PartitionId("t.commands", 3)]
    with caplog.at_level(logging.INFO, logger="services.runtime.service_runtime"):
        runtime._log_rebalanced("t.audit", given)  # started with nothing, then given one
        runtime._log_ready()
        runtime._log_rebalanced("t.audit", given)  # a later rebalance is reported
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in messages] == ["audit ready", "audit rebalanced (t.audit)"]
