"""A bad setting stops a process with one line naming the variable, never echoing its value
(it may be a URI with its password, or a key): docs/operations.md#settings. So does a
configuration file a setting names that cannot be used (`ConfigFileError`)."""

import json
import re
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from pydantic import AliasChoices, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsError

from services.runtime.settings import ENV_PREFIX

S = TypeVar("S", bound=BaseSettings)
T = TypeVar("T")


class ConfigFileError(ValueError):
    """A configuration file a setting names (an agent catalogue, MCP servers, LLM prices, API
    keys) is missing, unreadable or invalid. An operator's mistake, not a crash: the process
    says what and where in its message, and exits 2 without a traceback (`built`)."""


def validation_problems(error: ValidationError) -> list[str]:
    """`<field>: <what is wrong>` per problem of a configuration file's model, never the input:
    a value in the wrong place may be a secret (an MCP server's header, a stdio server's
    environment), and the message goes to the log."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}" if field else message)
    return problems


def invalid_settings(
    error: ValidationError, settings_class: type[BaseSettings] | None = None
) -> str:
    """`invalid settings: AGENT_RUNTIME_X: <what is wrong>; …`, without the values. A setting
    also read under other names (`LLM_BASE_URL`) is named by all of them."""
    problems = [
        f"{_variables(problem['loc'], problem['msg'], settings_class)}: {_what(problem)}"
        for problem in error.errors(include_url=False)
        # A default computed from another setting cannot be when that one is invalid: noise.
        if problem["type"] != "default_factory_not_called"
    ]
    return "invalid settings: " + "; ".join(problems)


def _what(problem: ErrorDetails) -> str:
    """The problem's message; never its input, which is only looked at."""
    # An optional list or object setting (`dict[…] | None`) whose text is not JSON reaches
    # validation as that text (pydantic-settings decodes it only when it can): say what the
    # required ones say (`load_settings`), not "Input should be a valid dictionary".
    text = problem.get("input")
    if problem["type"] in _CONTAINER_TYPES and isinstance(text, str) and not _is_json(text):
        return "not valid JSON"
    return problem["msg"]


_CONTAINER_TYPES = frozenset({"dict_type", "list_type", "model_type", "tuple_type", "set_type"})


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def load_settings(settings_class: type[S], process: str) -> S:
    """The settings from the environment (and .env), or exit 2 with `invalid_settings`."""
    try:
        return settings_class()
    except ValidationError as error:
        _exit(f"{process}: {invalid_settings(error, settings_class)}")
    except SettingsError as error:
        # A list or object setting whose text is not JSON fails before validation; the
        # library's message names the field (and carries no value).
        field = re.search(r'field "([^"]+)"', str(error))
        variable = _variable((field[1],), settings_class) if field else "settings"
        _exit(f"{process}: invalid settings: {variable}: not valid JSON")


def built(process: str, build: Callable[[], T]) -> T:
    """`build()`, or exit 2 with `<process>: <what is wrong>` when it raised `ConfigFileError`."""
    try:
        return build()
    except ConfigFileError as error:
        _exit(f"{process}: {error}")


def _variables(
    location: tuple[int | str, ...], message: str, settings_class: type[BaseSettings] | None
) -> str:
    """The variable a problem is about; for a rule between settings (no location), those of the
    settings its message names."""
    if location or settings_class is None:
        return _variable(location, settings_class)
    named = [f for f in settings_class.model_fields if re.search(rf"\b{f}\b", message)]
    return ", ".join(_variable((f,), settings_class) for f in named) or "settings"


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
