"""One log line per broker state change instead of hundreds of aiokafka errors a second.

While the broker is unreachable, every aiokafka client of a process (fetcher, heartbeat,
coordinator lookup, metadata refresh, producer) logs each failed attempt; a 24 s outage wrote
about 14,000 ERROR lines. This filter, on the runtime's log handler, lets through:

- the first connection error, as it is (the real cause, e.g. `Connect call failed`), marked
  `broker_state=unreachable`;
- then at most one line per `summary_interval_s`: "broker unreachable for 12 s, retrying
  (3,400 connection errors since the last line; latest: …)";
- and, from `check_recovery()` (called every second by the runtime), once no connection error
  was seen for `quiet_s`: "broker reachable again after 24 s (13,950 connection errors)".

Everything else passes untouched, including aiokafka lines that are not about reaching the
broker (a fatal join error, an unknown topic).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# aiokafka's message templates (record.msg) for a failed attempt to reach a broker; each is
# retried by aiokafka itself. Matched on the template, not the formatted text.
CONNECTION_TROUBLE: tuple[str, ...] = (
    "Unable connect to",
    "Unable to update metadata",
    "Unable to request metadata",
    "Failed fetch messages from",
    "Failed fetch offsets from",
    "Heartbeat send request failed",
    "Heartbeat session expired",
    "Group Coordinator Request failed",
    "FindCoordinator Request failed",
    "Cannot send",
    "Could not send",
    "OffsetCommit failed",
    "Failed to commit",
    "Auto offset commit failed",
    "Error sending",
    # The producer's sender, once per retried produce request that never reached the broker
    # (NodeNotReadyError, KafkaConnectionError): ~35 lines a second per waiting publish. The
    # colon keeps out "Got error produce response on topic-partition …", a partition's own
    # error from a broker that answered (e.g. NotLeaderForPartition), which passes as it is.
    "Got error produce response: ",
)

STATE_LOGGER = "agent_runtime.broker"


def is_connection_trouble(record: logging.LogRecord) -> bool:
    return (
        record.name.startswith("aiokafka")
        and record.levelno >= logging.WARNING
        and isinstance(record.msg, str)
        and record.msg.startswith(CONNECTION_TROUBLE)
    )


@dataclass
class _Outage:
    started: float
    last_error: float
    last_line: float
    errors: int = 0
    since_last_line: int = 0


class BrokerOutageSummary(logging.Filter):
    def __init__(
        self,
        *,
        summary_interval_s: float = 10.0,
        quiet_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval_s = summary_interval_s
        self._quiet_s = quiet_s
        self._clock = clock
        self._outage: _Outage | None = None
        # aiokafka logs on the event loop, but a handler may be called from any thread.
        self._lock = threading.Lock()

    @property
    def broker_unreachable(self) -> bool:
        return self._outage is not None

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_connection_trouble(record):
            return True
        now = self._clock()
        with self._lock:
            outage = self._outage
            if outage is None:
                self._outage = _Outage(started=now, last_error=now, last_line=now, errors=1)
                record.broker_state = "unreachable"
                return True
            outage.errors += 1
            outage.last_error = now
            if now - outage.last_line < self._interval_s:
                outage.since_last_line += 1
                return False
            suppressed = outage.since_last_line + 1
            outage.since_last_line = 0
            outage.last_line = now
            unreachable_s = now - outage.started
        latest = record.getMessage()
        record.msg = "broker unreachable for %.0f s, retrying (%d connection errors since the last line; latest: %s)"
        record.args = (unreachable_s, suppressed, latest)
        record.broker_state = "unreachable"
        record.unreachable_s = round(unreachable_s, 1)
        return True

    def check_recovery(self, log: logging.Logger | None = None) -> bool:
        """Log the recovery once no connection error was seen for `quiet_s`; True if it did."""
        now = self._clock()
        with self._lock:
            outage = self._outage
            if outage is None or now - outage.last_error < self._quiet_s:
                return False
            self._outage = None
        (log or logging.getLogger(STATE_LOGGER)).info(
            "broker reachable again after %.0f s (%d connection errors)",
            outage.last_error - outage.started,
            outage.errors,
            extra={
                "broker_state": "reachable",
                "unreachable_s": round(outage.last_error - outage.started, 1),
            },
        )
        return True
