"""Published marks written behind: batched, retried through an outage, flushed on demand."""

import asyncio

import pytest

from services.audit import published_marks
from services.audit.published_marks import PublishedMarks
from services.runtime.errors import RetryableError

pytestmark = pytest.mark.unit


class Database:
    def __init__(self, outages: int = 0) -> None:
        self.writes: list[list[str]] = []
        self.outages = outages
        self.release = asyncio.Event()
        self.release.set()

    async def write(self, record_ids: list[str]) -> None:
        await self.release.wait()
        if self.outages:
            self.outages -= 1
            raise RetryableError("database unavailable")
        self.writes.append(record_ids)


async def test_marks_noted_within_the_linger_share_one_write() -> None:
    database = Database()
    marks = PublishedMarks(database.write, linger_s=0.05)

    for record_id in ("a", "b", "c"):
        marks.note(record_id)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.2)

    assert database.writes == [["a", "b", "c"]]


async def test_flush_writes_without_waiting_for_the_linger() -> None:
    database = Database()
    marks = PublishedMarks(database.write, linger_s=60.0)

    marks.note("a")
    await asyncio.wait_for(marks.flush(), 5.0)

    assert database.writes == [["a"]]


async def test_noting_does_not_wait_and_marks_noted_meanwhile_share_one_write() -> None:
    database = Database()
    database.release.clear()
    marks = PublishedMarks(database.write, linger_s=0)

    marks.note("a")  # returns at once: the write is still blocked
    await asyncio.sleep(0)
    marks.note("b")
    marks.note("c")
    database.release.set()
    await marks.flush()

    assert database.writes == [["a"], ["b", "c"]]


async def test_an_outage_keeps_the_marks_for_the_next_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(published_marks, "RETRY_AFTER_S", 0.01)
    database = Database(outages=2)
    marks = PublishedMarks(database.write, linger_s=0)

    marks.note("a")
    marks.note("b")
    await marks.flush()

    assert database.writes == [["a", "b"]]


async def test_flush_gives_up_after_its_timeout_while_the_database_is_down() -> None:
    database = Database()
    database.release.clear()
    marks = PublishedMarks(database.write, linger_s=0)

    marks.note("a")
    await marks.flush(timeout_s=0.05)

    assert database.writes == []
    database.release.set()
    await marks.flush()
    assert database.writes == [["a"]]
