"""Parsing JSON text that anyone may have written (a model's tool-call arguments, a provider's
stream chunk): every way it is not usable JSON is one `ValueError`, so callers refuse it
instead of crashing on it."""

import json
from typing import Any


def parse_json(text: str | bytes) -> Any:
    """`json.loads`, whose every failure is a `ValueError`. Besides `JSONDecodeError`, it raises
    a plain `ValueError` for an integer past Python's 4,300-digit conversion limit, and a
    `RecursionError` for nesting past the interpreter's recursion limit (about a thousand
    levels: `[[[…]]]` of 10,000 characters fits in a tool call's arguments); that one comes out
    as a `ValueError` too."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def json_problem(exc: ValueError) -> str:
    """The short reason of a `parse_json` failure."""
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
