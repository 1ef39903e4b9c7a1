"""Test hook for the crash-safety tests: die between the session write and the publish.

Set `AGENT_RUNTIME_CRASH_AFTER_WRITES=N` and the process exits (no cleanup, like kill -9)
right after its N-th session write, before that write's events are published.
"""

import os
import sys

CRASH_EXIT_CODE = 86


class CrashAfterWrites:
    def __init__(self, writes: int) -> None:
        self._remaining = writes

    def __call__(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            sys.stderr.write("session-commands: crash hook fired after a session write\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT_CODE)


def no_crash() -> None:
    """The default: nothing happens between the write and the publish."""
