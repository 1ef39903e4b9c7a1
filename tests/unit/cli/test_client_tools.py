"""The chat's built-in client tools: read, list and create under the working directory only."""

import os
from pathlib import Path

import pytest

from contracts.limits import MAX_TOOL_RESULT_LENGTH
from services.cli.client_tools import ClientTools

pytestmark = pytest.mark.unit


@pytest.fixture
def tools(tmp_path: Path) -> ClientTools:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("print('hi')\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("# demo\n", encoding="utf-8")
    return ClientTools(tmp_path)


def test_reads_a_file_under_the_root(tools: ClientTools) -> None:
    result = tools.run("read_file", {"path": "src/app.py"})
    assert (result.content, result.is_error) == ("print('hi')\n", False)


def test_lists_a_directory_with_subdirectories_marked(tools: ClientTools) -> None:
    assert tools.run("list_directory", {"path": "."}).content == "README.md\nsrc/"


@pytest.mark.parametrize("path", ["../secret", "/etc/passwd", "src/../../x"])
def test_a_path_escaping_the_root_is_refused(tools: ClientTools, path: str) -> None:
    result = tools.run("read_file", {"path": path})
    assert result.is_error
    assert "outside the working directory" in result.content


def test_a_symlink_pointing_out_is_refused(tools: ClientTools, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("secret", encoding="utf-8")
    os.symlink(outside, tmp_path / "link.txt")
    assert tools.run("read_file", {"path": "link.txt"}).is_error


def test_write_creates_new_files_only(tools: ClientTools, tmp_path: Path) -> None:
    created = tools.run("write_file", {"path": "notes.txt", "content": "hello"})
    assert not created.is_error
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "hello"
    again = tools.run("write_file", {"path": "notes.txt", "content": "other"})
    assert again.is_error
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "hello"


def test_missing_files_and_unknown_tools_are_error_results(tools: ClientTools) -> None:
    assert tools.run("read_file", {"path": "nope.py"}).is_error
    assert "cannot run 'run_command'" in tools.run("run_command", {}).content
    assert tools.run("read_file", {}).is_error


def test_a_large_file_is_cut_to_the_contract_limit(tools: ClientTools, tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * (MAX_TOOL_RESULT_LENGTH * 2), encoding="utf-8")
    result = tools.run("read_file", {"path": "big.txt"})
    assert len(result.content) == MAX_TOOL_RESULT_LENGTH
    assert result.content.endswith("characters]")


@pytest.mark.parametrize("tool", ["read_file", "list_directory", "write_file"])
def test_a_path_with_a_nul_is_an_error_result_not_a_crash(tools: ClientTools, tool: str) -> None:
    """A model's arguments may hold anything: a NUL raised ValueError out of the chat."""
    result = tools.run(tool, {"path": "src\0/app.py", "content": "x"})
    assert result.is_error
    assert "NUL" in result.content


def test_a_content_that_is_not_utf8_text_creates_no_file(
    tools: ClientTools, tmp_path: Path
) -> None:
    """JSON can carry a lone surrogate ("\\ud800"): it crashed the chat after creating an empty
    file."""
    result = tools.run("write_file", {"path": "notes.txt", "content": "a\ud800"})
    assert result.is_error
    assert not (tmp_path / "notes.txt").exists()
