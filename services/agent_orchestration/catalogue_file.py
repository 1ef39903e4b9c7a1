"""Reading an agent catalogue from a file: the packaged default or an operator's replacement.

Formats by file suffix: `.toml` (stdlib tomllib), `.json`, and `.yaml`/`.yml` when PyYAML is
installed (it is not a dependency of this project). Every failure is a `CatalogueError` whose
message names the file, the field and the problem, because it is read by an operator looking at
a crash-looping pod.
"""

import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.agent_orchestration.catalogue import AgentCatalogue
from services.runtime.json_text import parse_json
from services.runtime.settings_errors import ConfigFileError, validation_problems
from services.runtime.toml_text import parse_toml

DEFAULT_CATALOGUE_RESOURCE = "default_catalogue.toml"


class CatalogueError(ConfigFileError):
    """The catalogue file cannot be used; the message says where and why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid agent catalogue {source}:\n{listing}")


def load_default_catalogue() -> AgentCatalogue:
    resource = resources.files("services.agent_orchestration").joinpath(DEFAULT_CATALOGUE_RESOURCE)
    source = f"<package>/{DEFAULT_CATALOGUE_RESOURCE}"
    return parse_catalogue(_parse_toml(resource.read_text(encoding="utf-8"), source), source)


def load_catalogue(path: Path | None) -> AgentCatalogue:
    """The operator's catalogue at `path`, or the packaged default when `path` is None."""
    if path is None:
        return load_default_catalogue()
    source = str(path)
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise CatalogueError(
            source,
            [f"unsupported file type {path.suffix!r}; use .toml, .json, .yaml or .yml"],
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(source, [f"cannot read the file: {exc}"]) from None
    return parse_catalogue(parser(text, source), source)


def parse_catalogue(data: object, source: str) -> AgentCatalogue:
    """Validate already-parsed data; `source` names where it came from in error messages."""
    try:
        return AgentCatalogue.model_validate(data)
    except ValidationError as exc:
        raise CatalogueError(source, validation_problems(exc)) from None


def _parse_toml(text: str, source: str) -> object:
    try:
        return parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(source, [f"not valid TOML: {exc}"]) from None


def _parse_json(text: str, source: str) -> object:
    try:
        return parse_json(text)
    except ValueError as exc:  # also a number past 4,300 digits, nesting past the recursion limit
        raise CatalogueError(source, [f"not valid JSON: {exc}"]) from None


def _parse_yaml(text: str, source: str) -> object:
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise CatalogueError(
            source, ["YAML needs PyYAML, which is not installed; use TOML or JSON instead"]
        ) from None
    try:
        loaded: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(source, [f"not valid YAML: {exc}"]) from None
    except RecursionError:
        raise CatalogueError(source, ["not valid YAML: nested too deeply"]) from None
    return loaded


_PARSERS: dict[str, Callable[[str, str], object]] = {
    ".toml": _parse_toml,
    ".json": _parse_json,
    ".yaml": _parse_yaml,
    ".yml": _parse_yaml,
}
