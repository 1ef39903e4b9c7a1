"""Group commit: concurrent submits share one flush; each waiter gets its own outcome."""

import asyncio

import pytest

from services.runtime.write_batch import WriteBatch

pytestmark = pytest.mark.unit


async def settle() -> None:
    for _ in range(5):  # let the submitting tasks and the flusher run their steps
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def flush(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def test_concurrent_submits_go_in_one_flush_and_get_their_own_result() -> None:
    recorder = Recorder()
    batch = WriteBatch(recorder.flush)
    results = await asyncio.gather(*(batch.submit(i) for i in (0, 2, 4, 1)), return_exceptions=True)
    assert recorder.batches == [[0, 2, 4, 1]]
    assert results[:3] == [0, 20, 40]
    assert isinstance(results[3], ValueError)


async def test_submits_during_a_flush_wait_for_the_next_one_request_at_a_time() -> None:
    recorder = Recorder()
    recorder.gate.clear()
    batch = WriteBatch(recorder.flush)
    first = asyncio.create_task(batch.submit(0))
    await settle()
    assert recorder.batches == [[0]]
    later = [asyncio.create_task(batch.submit(i)) for i in (2, 4)]
    await settle()
    assert recorder.batches == [[0]]  # never two flushes in flight
    recorder.gate.set()
    assert await asyncio.gather(first, *later) == [0, 20, 40]
    assert recorder.batches == [[0], [2, 4]]


async def test_batches_are_cut_at_max_batch() -> None:
    recorder = Recorder()
    batch = WriteBatch(recorder.flush, max_batch=2)
    await asyncio.gather(*(batch.submit(i) for i in (0, 2, 4)))
    assert recorder.batches == [[0, 2], [4]]


async def test_a_failed_flush_fails_every_waiter_of_its_batch_only() -> None:
    calls = 0

    async def flaky(items: list[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return list(items)

    batch = WriteBatch(flaky)
    results = await asyncio.gather(batch.submit(1), batch.submit(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await batch.submit(3) == 3
