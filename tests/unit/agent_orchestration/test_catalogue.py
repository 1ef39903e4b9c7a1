"""The agent catalogue: the shipped default, replacement files, and start-up validation errors."""

import importlib.util
import json
from importlib import resources
from pathlib import Path

import pytest

from contracts.agents import AgentType
from services.agent_orchestration.catalogue import SWITCH_AGENT_TOOL
from services.agent_orchestration.catalogue_file import (
    CatalogueError,
    load_catalogue,
    load_default_catalogue,
)
from tests.support.recursion import default_recursion_limit

pytestmark = pytest.mark.unit

SPECIALISTS = (AgentType.CODER, AgentType.ARCHITECT, AgentType.DEBUG, AgentType.ASK)


def _agent(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "description": "An agent.",
        "system_prompt": "You are an agent.",
        "tools": ["switch_agent"],
        "handoffs": ["orchestrator"],
    }
    base.update(overrides)
    return base


def _catalogue_data(**agent_overrides: dict[str, object]) -> dict[str, object]:
    agents: dict[str, object] = {
        "orchestrator": _agent(handoffs=["coder", "architect", "debug", "ask"]),
        **{agent.value: _agent() for agent in SPECIALISTS},
    }
    for name, override in agent_overrides.items():
        agents[name] = override
    return {"agents": agents}


def _write_json(tmp_path: Path, data: object, name: str = "agents.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_default_catalogue_has_every_agent_with_a_prompt() -> None:
    catalogue = load_default_catalogue()

    assert set(catalogue.agents) == set(AgentType)
    for profile in catalogue.agents.values():
        assert len(profile.system_prompt) > 200
        assert profile.description


def test_default_orchestrator_routes_to_every_specialist() -> None:
    orchestrator = load_default_catalogue().profile(AgentType.ORCHESTRATOR)

    assert set(orchestrator.handoffs) == set(SPECIALISTS)
    assert SWITCH_AGENT_TOOL in orchestrator.tools
    assert "switch_agent" in orchestrator.system_prompt


def test_default_specialists_can_return_to_the_orchestrator() -> None:
    catalogue = load_default_catalogue()

    for agent in SPECIALISTS:
        assert AgentType.ORCHESTRATOR in catalogue.profile(agent).handoffs


def test_no_path_means_the_default() -> None:
    assert load_catalogue(None) == load_default_catalogue()


def test_a_json_replacement_is_loaded(tmp_path: Path) -> None:
    data = _catalogue_data(coder=_agent(system_prompt="Write Rust only.", temperature=0.7))
    catalogue = load_catalogue(_write_json(tmp_path, data))

    assert catalogue.profile(AgentType.CODER).system_prompt == "Write Rust only."
    assert catalogue.profile(AgentType.CODER).temperature == 0.7


def test_a_toml_replacement_is_loaded(tmp_path: Path) -> None:
    lines = []
    for agent in AgentType:
        targets = '["coder"]' if agent is AgentType.ORCHESTRATOR else '["orchestrator"]'
        lines += [
            f"[agents.{agent.value}]",
            f'description = "{agent.value} agent"',
            f'system_prompt = "You are {agent.value}."',
            'tools = ["switch_agent"]',
            f"handoffs = {targets}",
            'model = "small-model"',
        ]
    path = tmp_path / "agents.toml"
    path.write_text("\n".join(lines), encoding="utf-8")

    catalogue = load_catalogue(path)

    assert catalogue.profile(AgentType.ORCHESTRATOR).handoffs == (AgentType.CODER,)
    assert catalogue.profile(AgentType.ASK).model == "small-model"


def _error_for(tmp_path: Path, data: object) -> CatalogueError:
    path = _write_json(tmp_path, data)
    with pytest.raises(CatalogueError) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)
    return raised.value


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        (
            _catalogue_data(coder=_agent(temperature=3.5)),
            "agents.coder.temperature",
            "less than or equal to 2",
        ),
        (
            _catalogue_data(debug=_agent(handoffs=["orchestrator", "wizard"])),
            "agents.debug.handoffs.1",
            "'orchestrator', 'coder'",
        ),
        (
            _catalogue_data(ask=_agent(tools=["switch_agent", "run_shell"])),
            "agents.ask",
            "unknown tool(s) run_shell",
        ),
        (
            _catalogue_data(ask=_agent(tools=[])),
            "agents.ask",
            "handoffs are given but tools do not include 'switch_agent'",
        ),
        (
            _catalogue_data(architect=_agent(handoff=["coder"])),
            "agents.architect.handoff",
            "Extra inputs are not permitted",
        ),
        (
            _catalogue_data(coder=_agent(system_prompt="")),
            "agents.coder.system_prompt",
            "at least 1 character",
        ),
        (
            _catalogue_data(coder=_agent(description="x" * 161)),
            "agents.coder.description",
            "at most 160 characters",
        ),
        (
            _catalogue_data(coder=_agent(handoffs=["coder"])),
            "agents.coder.handoffs",
            "cannot hand off to itself",
        ),
    ],
)
def test_an_invalid_field_is_named_with_its_problem(
    tmp_path: Path, data: object, field: str, problem: str
) -> None:
    error = _error_for(tmp_path, data)

    assert any(p.startswith(f"{field}:") and problem in p for p in error.problems), error.problems


def test_a_missing_agent_is_named(tmp_path: Path) -> None:
    data = _catalogue_data()
    agents = data["agents"]
    assert isinstance(agents, dict)
    del agents["debug"]

    error = _error_for(tmp_path, data)

    assert error.problems == ["agents: missing agent(s) debug"]


def test_a_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text('[agents.coder]\ndescription = "unterminated\n', encoding="utf-8")

    with pytest.raises(CatalogueError) as raised:
        load_catalogue(path)

    assert str(path) in str(raised.value)
    assert "not valid TOML" in str(raised.value)
    assert "line 2" in str(raised.value)


def test_an_unsupported_file_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agents.ini"
    path.write_text("", encoding="utf-8")

    with pytest.raises(CatalogueError, match=r"unsupported file type '\.ini'"):
        load_catalogue(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    with pytest.raises(CatalogueError, match="cannot read the file") as raised:
        load_catalogue(path)

    assert str(path) in str(raised.value)


def test_yaml_depends_on_pyyaml_being_installed(tmp_path: Path) -> None:
    # PyYAML is optional (not a project dependency): without it the error says what to do.
    path = tmp_path / "agents.yaml"
    path.write_text("agents: {}\n", encoding="utf-8")
    expected = "missing agent" if importlib.util.find_spec("yaml") else "YAML needs PyYAML"

    with pytest.raises(CatalogueError, match=expected):
        load_catalogue(path)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    # The example of docs/agent-orchestration.md: field errors and the rules between fields
    # (an unknown tool, a self-handoff) in several agents are reported together, a line each,
    # so an operator fixes the file in one round. Before, a field error hid every rule, and
    # the first broken rule hid the others.
    data = _catalogue_data(
        coder=_agent(temperature=2.5),
        debug=_agent(handoffs=["orchestrator", "wizard"]),
        ask=_agent(tools=["switch_agent", "run_shell"]),
        architect=_agent(handoffs=["architect", "coder"]),
    )

    error = _error_for(tmp_path, data)

    assert sorted(error.problems) == sorted(
        [
            "agents.coder.temperature: Input should be less than or equal to 2",
            "agents.debug.handoffs.1: Input should be 'orchestrator', 'coder', 'architect', "
            "'debug' or 'ask'",
            "agents.ask: unknown tool(s) run_shell; known tools: switch_agent",
            "agents.architect.handoffs: an agent cannot hand off to itself",
        ]
    )


def test_every_broken_rule_of_a_valid_looking_file_is_listed(tmp_path: Path) -> None:
    data = _catalogue_data(
        coder=_agent(tools=["switch_agent", "switch_agent"], handoffs=[]),
        ask=_agent(handoffs=["ask"]),
    )

    error = _error_for(tmp_path, data)

    assert sorted(error.problems) == sorted(
        [
            "agents.coder: tools are listed more than once",
            "agents.coder: tools include 'switch_agent' but no handoffs are given",
            "agents.ask.handoffs: an agent cannot hand off to itself",
        ]
    )


def test_a_rule_is_not_reported_on_a_guess(tmp_path: Path) -> None:
    # An agent that is present but not a table is not "missing", and with a `tools` that is
    # not a table the known tool names cannot be said: no "unknown tool(s)" lines for them.
    data = _catalogue_data(coder="not a table")  # type: ignore[arg-type]
    data["tools"] = ["read_file"]
    data["agents"]["ask"] = _agent(tools=["switch_agent", "read_file"])  # type: ignore[index]

    error = _error_for(tmp_path, data)

    assert [problem.split(":")[0] for problem in error.problems] == ["agents.coder", "tools"]


def test_the_documented_example_reads_as_documented(tmp_path: Path) -> None:
    # docs/agent-orchestration.md, "Replacing it": the default file with four mistakes gives
    # these four lines, in the order of the file.
    text = (
        resources.files("services.agent_orchestration")
        .joinpath("default_catalogue.toml")
        .read_text(encoding="utf-8")
    )
    edits = [
        ("temperature = 0.2", "temperature = 2.5"),
        (
            'handoffs = ["orchestrator", "coder"]\ntemperature = 0.1',
            'handoffs = ["orchestrator", "wizard"]\ntemperature = 0.1',
        ),
        (
            'tools = ["switch_agent"]\nhandoffs = ["orchestrator", "coder", "architect", "debug"]',
            'tools = ["switch_agent", "run_shell"]\n'
            'handoffs = ["orchestrator", "coder", "architect", "debug"]',
        ),
        (
            'parameters = { type = "object", properties = { path',
            'parameters = { type = "objekt", properties = { path',
        ),
    ]
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "agents.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(CatalogueError) as raised:
        load_catalogue(path)

    assert raised.value.problems == [
        "agents.coder.temperature: Input should be less than or equal to 2",
        "agents.debug.handoffs.1: Input should be 'orchestrator', 'coder', 'architect', 'debug' "
        "or 'ask'",
        "agents.ask: unknown tool(s) run_shell; known tools: list_directory, read_file, "
        "switch_agent, write_file",
        "tools.read_file.parameters: not a valid JSON Schema: 'objekt' is not valid under any of "
        "the given schemas",
    ]


def test_a_json_catalogue_with_an_integer_past_the_conversion_limit_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agents.json"
    path.write_text('{"agents": {}, "n": ' + "7" * 5_000 + "}", encoding="utf-8")

    with pytest.raises(CatalogueError, match="not valid JSON: Exceeds the limit"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("agents.json", '{"agents": ' + "[" * 100_000 + "]" * 100_000 + "}", "not valid JSON"),
        ("agents.toml", "agents = " + "[" * 100_000 + "]" * 100_000, "not valid TOML"),
    ],
)
def test_a_catalogue_nested_past_the_recursion_limit_is_refused(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    # A RecursionError escaped: a traceback and exit 1 instead of the file named, exit 2.
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with default_recursion_limit(), pytest.raises(CatalogueError) as raised:
        load_catalogue(path)
    assert raised.value.problems == [f"{problem}: nested too deeply"]
