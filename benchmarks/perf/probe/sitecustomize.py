"""Counts the MongoDB commands of a benchmarked process, and times its garbage collections,
without touching its code.

The benchmark starts each service with this directory on PYTHONPATH and
BENCH_MONGO_PROBE_DIR set; Python imports `sitecustomize` at start-up, which registers a
global pymongo command listener (it applies to every client made afterwards) and a `gc`
callback, and twice a second writes the counts by command name to `<dir>/<instance>.json` and
the collector's pauses to `<dir>/<instance>.pauses`: the last pauses of a full (generation 2)
collection or of 2 ms or more, as [epoch seconds at its end, generation, ms], wall time (a
pause is what the event loop waited, whatever the cause). Without the variable it does nothing.
"""

import gc
import json
import os
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

_DIR = os.environ.get("BENCH_MONGO_PROBE_DIR")
_KEPT_PAUSES = 5_000
_NOTED_MS = 2.0

if _DIR:
    from pymongo import monitoring

    _counts: Counter[str] = Counter()
    _pauses: deque[tuple[float, int, float]] = deque(maxlen=_KEPT_PAUSES)
    _lock = threading.Lock()
    _started = [0.0]

    class _CommandCounter(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            with _lock:
                _counts[event.command_name] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    def _on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - _started[0]) * 1000
        generation = int(info["generation"])
        if generation == 2 or ms >= _NOTED_MS:
            _pauses.append((round(time.time(), 3), generation, round(ms, 2)))

    monitoring.register(_CommandCounter())
    gc.callbacks.append(_on_collection)
    _name = os.environ.get("AGENT_RUNTIME_INSTANCE_NAME") or str(os.getpid())
    _counts_file = Path(_DIR) / f"{_name}.json"
    _pauses_file = Path(_DIR) / f"{_name}.pauses"

    def _write(target: Path, text: str) -> None:
        tmp = target.with_name(f"{target.name}.tmp")
        tmp.write_text(text)
        tmp.replace(target)

    def _copy(pauses: deque[tuple[float, int, float]]) -> list[tuple[float, int, float]]:
        # The callback appends from whichever thread collects, so a copy can meet a change.
        while True:
            try:
                return list(pauses)
            except RuntimeError:
                continue

    def _write_forever() -> None:
        while True:
            with _lock:
                counts = json.dumps(dict(_counts))
            _write(_counts_file, counts)
            _write(_pauses_file, json.dumps(_copy(_pauses)))
            time.sleep(0.5)

    threading.Thread(target=_write_forever, name="bench-mongo-probe", daemon=True).start()
