"""Derived ids are uuid5 of their causes: `derive_id` spells uuid5 out for speed, so it is
compared with the standard library's on many names."""

import random
import re
import uuid
from pathlib import Path

import pytest

from contracts.base import _ID_NAMESPACE, derive_id

pytestmark = pytest.mark.unit


def test_a_derived_id_is_the_uuid5_of_its_causes() -> None:
    chooser = random.Random(15)
    alphabet = "abcXYZ019-_.:/ \x1féü€😀"
    for _ in range(2_000):
        parts = [
            "".join(chooser.choice(alphabet) for _ in range(chooser.randrange(0, 40)))
            for _ in range(chooser.randrange(0, 4))
        ]
        kind = chooser.choice(["audit", "event", "turn", "invocation", "dead-letter"])
        name = "\x1f".join([kind, *parts])
        assert derive_id(kind, *parts) == f"{kind}-{uuid.uuid5(_ID_NAMESPACE, name)}"


def test_integer_parts_are_their_decimal_text() -> None:
    assert derive_id("invocation", "turn-1", 0) == derive_id("invocation", "turn-1", "0")


def test_the_readme_defines_derived_ids_for_publishers_in_any_language() -> None:
    # A publisher in another language computes the turn its message starts (to cancel it
    # before its TurnStarted arrives) from the README alone: the namespace, the separator and
    # the form must be there, and its worked example must be what the services derive.
    readme = (Path(__file__).parents[3] / "contracts" / "README.md").read_text()
    assert f"`{_ID_NAMESPACE}`" in readme
    assert "U+001F" in readme
    example = re.search(r'`derive_id\("turn", "s-1", "m-1"\)` =\s+`([^`]+)`', readme)
    assert example is not None
    assert example.group(1) == derive_id("turn", "s-1", "m-1")
