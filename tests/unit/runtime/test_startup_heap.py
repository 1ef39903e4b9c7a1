"""A service's start-up heap is kept out of the collector's full passes: `run()` owns the
process and freezes what exists before the event loop starts (startup_heap.py)."""

import gc

import pytest

from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings


def test_run_freezes_the_heap_built_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = ServiceRuntime("audit", RuntimeSettings(topic_prefix="t."), configure_logs=False)
    built_before_run = {"a start-up object": ["held by a cycle"]}
    seen: list[tuple[int, bool]] = []

    async def app_run() -> None:
        walked = any(o is built_before_run for o in gc.get_objects(generation=2))
        seen.append((gc.get_freeze_count(), walked))

    monkeypatch.setattr(runtime.app, "run", app_run)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        runtime.run()
    finally:
        gc.unfreeze()  # give the test process its heap back
    assert len(seen) == 1
    frozen, walked_by_full_passes = seen[0]
    assert frozen > 0
    assert not walked_by_full_passes
