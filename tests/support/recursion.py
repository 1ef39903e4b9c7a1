"""The interpreter's default recursion limit for a block of a test.

mypy, which a typing test runs in-process, raises the limit to 16,384 for the rest of the
pytest process; JSON nested 5,000 deep then parses, and a test of what the services do with
JSON nested past the default limit (1,000, what a service runs with) would test nothing."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_RECURSION_LIMIT = 1_000


@contextmanager
def default_recursion_limit() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
