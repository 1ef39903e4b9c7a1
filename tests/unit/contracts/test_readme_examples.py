"""The command examples in contracts/README.md must stay valid."""

import json
import re
from pathlib import Path

import pytest

from contracts.registry import MESSAGE_TYPES, TOPIC_MESSAGES
from contracts.topics import TopicName

pytestmark = pytest.mark.unit

README = Path(__file__).parents[3] / "contracts" / "README.md"
EXAMPLE = re.compile(r"### `(?P<type>[a-z_.0-9]+)`.*?```json\n(?P<body>.*?)```", re.S)


def test_every_command_has_a_valid_example() -> None:
    examples = {m["type"]: json.loads(m["body"]) for m in EXAMPLE.finditer(README.read_text())}
    commands = {model.model_fields["type"].default for model in TOPIC_MESSAGES[TopicName.COMMANDS]}
    assert set(examples) == commands
    for type_, body in examples.items():
        assert MESSAGE_TYPES[type_].model_validate(body).model_dump(mode="json") == body
