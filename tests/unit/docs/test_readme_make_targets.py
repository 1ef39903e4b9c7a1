"""README's make tables name every target `make help` lists (README: "`make help` lists them
all"): a reader of the README alone must not miss a target nor read an outdated summary."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).parents[3]
HELP_TARGET = re.compile(r"^(?P<target>[a-z][a-z-]*):[^#\n]*## ", re.M)


def _readme_rows() -> dict[str, str]:
    """Each row of README's make tables by the targets its first cell names
    (`make up` / `make down`, `make infra-up` / `infra-down` / …)."""
    rows: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("| `make "):
            first_cell = line.split("|")[1]
            for name in re.findall(r"`(?:make )?([a-z][a-z-]*)`", first_cell):
                rows[name] = line
    return rows


def test_every_make_target_is_in_the_readme() -> None:
    targets = {m["target"] for m in HELP_TARGET.finditer((ROOT / "Makefile").read_text())}
    assert targets, "no target with a `##` help line in the Makefile"
    # `run` and `test` have sections of their own ("The two commands"), `help` is the list.
    documented = set(_readme_rows()) | {"run", "test", "help"}
    assert targets <= documented, f"not in README: {sorted(targets - documented)}"


def test_the_readme_says_make_contracts_writes_the_openapi_too() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\ncontracts:", 1)[1].split("\n\n", 1)[0]
    assert "services.gateway.openapi" in recipe
    assert "OpenAPI" in _readme_rows()["contracts"]
