"""Stopping the session-events watcher when aiokafka's consumer stop raises its own cancel."""

import asyncio
from typing import Any

import pytest

from contracts.base import Message
from services.runtime import session_watch
from services.runtime.kafka_security import KafkaSecuritySettings
from services.runtime.session_watch import SessionEventsWatcher

pytestmark = pytest.mark.unit


class NoWork:
    def has_session(self, session_id: str) -> bool:
        return False

    def on_fact(self, fact: Message) -> None:
        raise AssertionError("no fact expected")


class BrokerDownConsumer:
    """What aiokafka 0.14's consumer does on stop() while the broker is unreachable: its
    fetcher's close() cancels the fetch that is sleeping out a retry backoff and awaits it,
    which re-raises that task's CancelledError (aiokafka/consumer/fetcher.py, close)."""

    stop_delay_s = 0.0

    def __init__(self, *topics: str, **options: Any) -> None:
        self.stopped = False

    async def start(self) -> None:
        return None

    def assignment(self) -> set[object]:
        return set()

    async def getmany(self, *partitions: object, timeout_ms: int = 0) -> dict[object, list[Any]]:
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def stop(self) -> None:
        await asyncio.sleep(self.stop_delay_s)
        backing_off = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0)
        backing_off.cancel()
        await backing_off  # raises CancelledError, as aiokafka's `await x`


@pytest.fixture
def watcher(monkeypatch: pytest.MonkeyPatch) -> SessionEventsWatcher:
    monkeypatch.setattr(session_watch, "AIOKafkaConsumer", BrokerDownConsumer)
    return SessionEventsWatcher(KafkaSecuritySettings(_env_file=None), "t.session-events", NoWork())


async def test_a_consumer_stop_that_raises_its_own_cancel_still_stops_the_watcher(
    watcher: SessionEventsWatcher,
) -> None:
    # SIGTERM during a broker outage: the shutdown hook must return, or FastStream skips the
    # service's later hooks and the process ends with a bare traceback, exit 1.
    await watcher.start()
    await asyncio.sleep(0.05)

    await asyncio.wait_for(watcher.stop(), 5)


async def test_a_stop_that_is_itself_cancelled_is_cancelled(
    watcher: SessionEventsWatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BrokerDownConsumer, "stop_delay_s", 3600.0)
    await watcher.start()
    stopping = asyncio.ensure_future(watcher.stop())
    await asyncio.sleep(0.05)

    stopping.cancel()

    with pytest.raises(asyncio.CancelledError):
        await stopping
