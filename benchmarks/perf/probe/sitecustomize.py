"""Counts the MongoDB commands of a benchmarked process, without touching its code.

The benchmark starts each service with this directory on PYTHONPATH and
BENCH_MONGO_PROBE_DIR set; Python imports `sitecustomize` at start-up, which registers a
global pymongo command listener (it applies to every client made afterwards) and writes the
counts by command name to `<dir>/<instance>.json` twice a second. Without the variable it
does nothing.
"""

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

_DIR = os.environ.get("BENCH_MONGO_PROBE_DIR")

if _DIR:
    from pymongo import monitoring

    _counts: Counter[str] = Counter()
    _lock = threading.Lock()

    class _CommandCounter(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            with _lock:
                _counts[event.command_name] += 1

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(_CommandCounter())
    _name = os.environ.get("AGENT_RUNTIME_INSTANCE_NAME") or str(os.getpid())
    _target = Path(_DIR) / f"{_name}.json"

    def _write_forever() -> None:
        while True:
            with _lock:
                text = json.dumps(dict(_counts))
            tmp = _target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(_target)
            time.sleep(0.5)

    threading.Thread(target=_write_forever, name="bench-mongo-probe", daemon=True).start()
