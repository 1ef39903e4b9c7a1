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


KCAT_HEREDOC = re.compile(r"kcat -P .*?<<'JSON'\n(?P<body>.*?)\nJSON\n", re.S)


@pytest.mark.parametrize(
    "readme", [README, README.parents[1] / "README.md"], ids=lambda p: p.parent.name
)
def test_the_kcat_example_publishes_one_valid_command(readme: Path) -> None:
    # kcat -P sends one message per input line: a body wrapped over two lines reached the
    # topic as two malformed records, so the copied example dead-lettered instead of creating.
    bodies = [m["body"] for m in KCAT_HEREDOC.finditer(readme.read_text())]
    assert bodies
    for body in bodies:
        lines = body.splitlines()
        assert len(lines) == 1, f"{readme}: kcat would publish {len(lines)} records"
        command = json.loads(lines[0])
        MESSAGE_TYPES[command["type"]].model_validate(command)
