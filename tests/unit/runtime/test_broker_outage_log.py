"""The broker-outage log summary on a fake clock: one line per state change, one per interval."""

import logging

import pytest

from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Capture(logging.Handler):
    def __init__(self, summary: BrokerOutageSummary) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(summary)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def lines(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def summary(clock: FakeClock) -> BrokerOutageSummary:
    return BrokerOutageSummary(summary_interval_s=10.0, quiet_s=5.0, clock=clock)


@pytest.fixture
def capture(summary: BrokerOutageSummary) -> logging.Logger:
    logger = logging.getLogger("test.broker_outage")
    logger.handlers = [Capture(summary)]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def captured(logger: logging.Logger) -> Capture:
    handler = logger.handlers[0]
    assert isinstance(handler, Capture)
    return handler


def connect_error(node: int = 1) -> logging.LogRecord:
    return logging.LogRecord(
        "aiokafka.client",
        logging.ERROR,
        __file__,
        1,
        "Unable connect to node with id %s: %s",
        (node, "[Errno 111] Connect call failed ('127.0.0.1', 9092)"),
        None,
    )


def fetch_error() -> logging.LogRecord:
    return logging.LogRecord(
        "aiokafka.consumer.fetcher",
        logging.ERROR,
        __file__,
        1,
        "Failed fetch messages from %s: %s",
        (1, "NodeNotReadyError"),
        None,
    )


def produce_error() -> logging.LogRecord:
    """aiokafka's sender, for each retry of a produce request the broker never got."""
    return logging.LogRecord(
        "aiokafka.producer.sender",
        logging.WARNING,
        __file__,
        1,
        "Got error produce response: %s",
        ("NodeNotReadyError: Attempt to send a request to node which is not ready (node id 1).",),
        None,
    )


def test_a_publish_retried_through_an_outage_is_summarised_too(
    summary: BrokerOutageSummary, clock: FakeClock, capture: logging.Logger
) -> None:
    # The gateway answering one command with 503 after 5 s wrote 172 of these lines.
    handler = captured(capture)
    for tick in range(12 * 35):
        clock.now = 1_000.0 + tick / 35
        handler.handle(produce_error())
    assert len(handler.lines) == 2, handler.lines[:5]
    assert handler.lines[0].startswith("Got error produce response: NodeNotReadyError")
    assert handler.lines[1].startswith("broker unreachable for 10 s, retrying (350 connection")
    assert summary.broker_unreachable


def test_a_24_s_outage_at_600_errors_a_second_writes_four_lines(
    summary: BrokerOutageSummary, clock: FakeClock, capture: logging.Logger
) -> None:
    handler = captured(capture)
    for tick in range(24 * 600):  # what aiokafka wrote: ~14,000 errors in 24 s
        clock.now = 1_000.0 + tick / 600
        handler.handle(connect_error() if tick % 2 else fetch_error())
        if tick % 600 == 0:
            assert not summary.check_recovery(capture)  # errors keep coming: still down
    clock.now += 5.0
    assert summary.check_recovery(capture)

    lines = handler.lines
    assert len(lines) == 4, lines
    assert lines[0].startswith("Failed fetch messages from 1")  # the first error, as it is
    assert lines[1].startswith("broker unreachable for 10 s, retrying (6000 connection errors")
    assert lines[2].startswith("broker unreachable for 20 s, retrying (6000 connection errors")
    assert "latest: Failed fetch messages from 1: NodeNotReadyError" in lines[1]
    assert lines[3] == "broker reachable again after 24 s (14400 connection errors)"
    states = [getattr(r, "broker_state", None) for r in handler.records]
    assert states == ["unreachable", "unreachable", "unreachable", "reachable"]
    assert handler.records[3].levelno == logging.INFO


def test_no_recovery_line_without_an_outage_nor_while_errors_are_recent(
    summary: BrokerOutageSummary, clock: FakeClock, capture: logging.Logger
) -> None:
    assert not summary.check_recovery(capture)
    captured(capture).handle(connect_error())
    assert summary.broker_unreachable
    clock.now += 4.9
    assert not summary.check_recovery(capture)
    clock.now += 0.2
    assert summary.check_recovery(capture)
    assert not summary.broker_unreachable
    assert not summary.check_recovery(capture)  # one line per state change


def test_a_second_outage_starts_with_its_own_first_error(
    summary: BrokerOutageSummary, clock: FakeClock, capture: logging.Logger
) -> None:
    handler = captured(capture)
    handler.handle(connect_error())
    clock.now += 6
    summary.check_recovery(capture)
    clock.now += 60
    handler.handle(connect_error(2))
    handler.handle(connect_error(2))
    assert [line[:36] for line in handler.lines] == [
        "Unable connect to node with id 1: [E",
        "broker reachable again after 0 s (1 ",
        "Unable connect to node with id 2: [E",
    ]


@pytest.mark.parametrize(
    ("name", "level", "msg"),
    [
        (
            "aiokafka.consumer.group_coordinator",
            logging.ERROR,
            "Attempt to join group failed due to fatal error: %s",
        ),
        ("aiokafka.cluster", logging.ERROR, "Topic %s not found in cluster metadata"),
        (
            "aiokafka.producer.sender",
            logging.WARNING,
            "Got error produce response on topic-partition %s, retrying. Error: %s",
        ),
        ("aiokafka.client", logging.INFO, "Unable connect to node with id %s: %s"),
        ("services.runtime.keyed_consumer", logging.ERROR, "Unable connect to %s"),
    ],
)
def test_other_lines_pass_untouched_even_during_an_outage(
    summary: BrokerOutageSummary, capture: logging.Logger, name: str, level: int, msg: str
) -> None:
    handler = captured(capture)
    handler.handle(connect_error())
    for _ in range(3):
        handler.handle(
            logging.LogRecord(name, level, __file__, 1, msg, ("x", "y")[: msg.count("%s")], None)
        )
    assert len(handler.records) == 4
    assert all(not hasattr(r, "broker_state") for r in handler.records[1:])
