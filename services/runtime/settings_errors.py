"""A bad setting stops a process with one line naming the variable, never echoing its value
(it may be a URI with its password, or a key): docs/operations.md#settings."""

import sys
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from services.runtime.settings import ENV_PREFIX

S = TypeVar("S", bound=BaseSettings)


def invalid_settings(error: ValidationError) -> str:
    """`invalid settings: AGENT_RUNTIME_X: <what is wrong>; …`, without the values."""
    problems = [
        f"{_variable(problem['loc'])}: {problem['msg']}"
        for problem in error.errors(include_input=False, include_url=False)
        # A default computed from another setting cannot be when that one is invalid: noise.
        if problem["type"] != "default_factory_not_called"
    ]
    return "invalid settings: " + "; ".join(problems)


def load_settings(settings_class: type[S], process: str) -> S:
    """The settings from the environment (and .env), or exit 2 with `invalid_settings`."""
    try:
        return settings_class()
    except ValidationError as error:
        _exit(f"{process}: {invalid_settings(error)}")


def _variable(location: tuple[int | str, ...]) -> str:
    if not location:
        return "settings"
    return ENV_PREFIX + str(location[0]).upper()


def _exit(line: str) -> NoReturn:
    print(line, file=sys.stderr)
    sys.exit(2)
