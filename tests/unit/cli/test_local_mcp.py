"""The local stack's MCP servers file: the demo server over stdio, or the developer's own."""

from pathlib import Path

import pytest

from services.cli.local_mcp import DEMO_SERVER, SETTING, local_mcp_env
from services.tool_invocation.mcp_servers import McpServers

pytestmark = pytest.mark.unit


def test_the_demo_server_is_configured_with_this_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SETTING, raising=False)
    env = local_mcp_env(tmp_path)
    path = env[SETTING]
    assert path is not None
    demo = McpServers.load(Path(path)).servers["demo"]
    assert demo.transport == "stdio"
    assert demo.args == (str(DEMO_SERVER),)
    assert DEMO_SERVER.exists()


def test_a_file_of_the_developer_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTING, "/etc/mine.toml")
    assert local_mcp_env(tmp_path) == {}
    assert not (tmp_path / "mcp_servers.toml").exists()
