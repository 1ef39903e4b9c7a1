"""The MCP servers of a local stack (`make run` / `make up`): the demo MCP server
(deploy/local/mcp_demo_server.py) as the server `demo`, over stdio, unless
AGENT_RUNTIME_MCP_SERVERS_FILE names a file of the developer's own.

Written into the run directory at start because the stdio command must be this interpreter
(the project's venv, where the `mcp` SDK is), which a checked-in file cannot name.
"""

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_SERVER = REPO_ROOT / "deploy" / "local" / "mcp_demo_server.py"
SETTING = "AGENT_RUNTIME_MCP_SERVERS_FILE"


def local_mcp_env(run_dir: Path) -> dict[str, str | None]:
    """The setting tool-invocation gets: the developer's file, else the demo server's."""
    if os.environ.get(SETTING):
        return {}
    path = run_dir / "mcp_servers.toml"
    run_dir.mkdir(parents=True, exist_ok=True)
    # JSON strings are valid TOML basic strings (paths with backslashes or quotes stay intact).
    path.write_text(
        "# Written by `agent-runtime up/run`: the demo MCP server for the local stack.\n"
        "[servers.demo]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(DEMO_SERVER))}]\n"
        "call_timeout_s = 30\n",
        encoding="utf-8",
    )
    return {SETTING: str(path)}
