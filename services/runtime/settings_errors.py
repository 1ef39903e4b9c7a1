"""A bad setting stops a process with one line naming the variable, never echoing its value
(it may be a URI with its password, or a key): docs/operations.md#settings."""

import sys
from typing import NoReturn, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from services.runtime.settings import ENV_PREFIX

S = TypeVar("S", bound=BaseSettings)


def invalid_settings(
    error: ValidationError, settings_class: type[BaseSettings] | None = None
) -> str:
    """`invalid settings: AGENT_RUNTIME_X: <what is wrong>; …`, without the values. A setting
    also read under other names (`LLM_BASE_URL`) is named by all of them."""
    problems = [
        f"{_variable(problem['loc'], settings_class)}: {problem['msg']}"
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
        _exit(f"{process}: {invalid_settings(error, settings_class)}")


def _variable(location: tuple[int | str, ...], settings_class: type[BaseSettings] | None) -> str:
    if not location:
        return "settings"
    name = str(location[0])
    for field_name, field in (settings_class.model_fields if settings_class else {}).items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and name in (field_name, *map(str, alias.choices)):
            return " / ".join(dict.fromkeys(str(choice).upper() for choice in alias.choices))
    return ENV_PREFIX + name.upper()


def _exit(line: str) -> NoReturn:
    print(line, file=sys.stderr)
    sys.exit(2)
