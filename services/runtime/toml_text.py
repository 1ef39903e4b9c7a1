"""Parsing TOML an operator wrote (the agent catalogue, the MCP servers file, the LLM prices):
every way it is not usable TOML is one `tomllib.TOMLDecodeError`, so each file's loader names
the file and exits 2 instead of crashing."""

import tomllib
from typing import Any


def parse_toml(text: str) -> dict[str, Any]:
    """`tomllib.loads`, whose every failure is a `TOMLDecodeError`: arrays or inline tables
    nested past the interpreter's recursion limit raise `RecursionError` there (a traceback
    and exit 1 at start-up); that one comes out as a `TOMLDecodeError` too."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("nested too deeply") from None
