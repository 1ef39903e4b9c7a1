"""Why a text that should be JSON (a model's tool-call arguments) is not usable JSON."""

import json


def json_problem(exc: ValueError) -> str:
    """The short reason of a `json.loads` failure. Besides JSONDecodeError, json.loads raises a
    plain ValueError for an integer past Python's 4,300-digit conversion limit, which a model
    (or anyone) can write: callers catch ValueError, so such a text is refused, not a crash."""
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
