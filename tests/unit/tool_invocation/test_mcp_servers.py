"""The MCP servers file: stdio or streamable HTTP per server, validated at start."""

from pathlib import Path

import pytest

from services.tool_invocation.mcp_servers import McpServers, McpServersError

pytestmark = pytest.mark.unit

GOOD = """
[servers.files]
command = "python"
args = ["-m", "files_mcp"]
env = { ROOT = "/srv" }
call_timeout_s = 5

[servers.search]
url = "https://search.example/mcp"
headers_env = { Authorization = "SEARCH_MCP_AUTH" }
"""


def test_stdio_and_http_servers_are_read() -> None:
    servers = McpServers.parse(GOOD)
    files, search = servers.servers["files"], servers.servers["search"]
    assert (files.transport, files.args, files.call_timeout_s) == ("stdio", ("-m", "files_mcp"), 5)
    assert (search.transport, search.url, search.call_timeout_s) == (
        "streamable-http",
        "https://search.example/mcp",
        30.0,
    )


def test_header_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    search = McpServers.parse(GOOD).servers["search"]
    with pytest.raises(McpServersError, match="SEARCH_MCP_AUTH"):
        search.http_headers()
    monkeypatch.setenv("SEARCH_MCP_AUTH", "Bearer s3cret")
    assert search.http_headers() == {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("[servers.x]\n", "exactly one of `command` or `url`"),
        ('[servers.x]\ncommand = "a"\nurl = "http://b"\n', "exactly one"),
        ('[servers.x]\nurl = "ftp://b"\n', "url"),
        ('[servers.x]\nurl = "http://b"\nargs = ["-v"]\n', "apply to `command` servers"),
        ('[servers.x]\ncommand = "a"\ncall_timeout_s = 0\n', "call_timeout_s"),
        # inf passed PositiveFloat: a connect that never gives up, a timeout of "inf s".
        ('[servers.x]\ncommand = "a"\ncall_timeout_s = inf\n', "call_timeout_s"),
        # Passed, and every call failed server_unavailable at run time instead.
        ('[servers.x]\nurl = "http://"\n', "empty host"),
        ('[servers.x]\nurl = "http://a b/mcp"\n', "url"),
        ('[servers.x]\nurl = "http://b"\nheaders = { "Bad Name" = "v" }\n', "not an HTTP header"),
        ('[servers.x]\nurl = "http://b"\nheaders = { X-A = "v\\nX-B: 1" }\n', "line break"),
        ('[servers.x]\nurl = "http://b"\nheaders_env = { "A B" = "VAR" }\n', "not an HTTP header"),
        # A TOML boolean or string is a mistake, not 1 s or 5 s.
        ('[servers.x]\ncommand = "a"\ncall_timeout_s = true\n', "call_timeout_s"),
        ('[servers.x]\ncommand = "a"\nconnect_timeout_s = "5"\n', "connect_timeout_s"),
        ('[servers.x]\ncommand = "a"\nconnect_timeout_s = inf\n', "connect_timeout_s"),
        ('[servers.x]\ncommand = "a"\ntimeout = 3\n', "timeout"),
        ('[servers."Bad Name"]\ncommand = "a"\n', "name"),
        ("[other]\n", "only [servers.<name>]"),
        ("not toml =", "not TOML"),
    ],
)
def test_bad_files_are_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(McpServersError, match=complaint.replace("[", r"\[").replace(".", r"\.")):
        McpServers.parse(text)


def test_no_file_means_no_servers_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    assert McpServers.load(None).servers == {}
    with pytest.raises(McpServersError, match="No such file"):
        McpServers.load(tmp_path / "absent.toml")


def test_a_header_variable_unset_at_start_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/tool-invocation.md: the file is validated at start. An unset `headers_env`
    variable was found only by each call (server_unavailable, retried, tripping the circuit)."""
    path = tmp_path / "servers.toml"
    path.write_text(GOOD, encoding="utf-8")
    monkeypatch.delenv("SEARCH_MCP_AUTH", raising=False)
    with pytest.raises(McpServersError, match=r"servers\.toml: servers\.search: .*SEARCH_MCP_AUTH"):
        McpServers.load(path)
    monkeypatch.setenv("SEARCH_MCP_AUTH", "Bearer s3cret")
    assert (
        McpServers.load(path).servers["search"].http_headers()["Authorization"] == "Bearer s3cret"
    )


@pytest.mark.parametrize(
    "text",
    [
        '[servers.x]\nurl = "http://b"\nheaders = { Authorization = 12345678901 }\n',
        '[servers.x]\nurl = "http://b"\nheaders = ["Bearer 12345678901"]\n',
        '[servers.x]\ncommand = "a"\nenv = { TOKEN = ["12345678901"] }\n',
        '[servers.x]\ncommand = "a"\nenv = { TOKEN = "12345678901" }\ntoken = "12345678901"\n',
    ],
)
def test_a_refusal_names_the_field_never_its_value(text: str) -> None:
    """The message goes to the log: a header's or an environment variable's value in the wrong
    shape or place may be a secret (pydantic's own message quoted it as input_value)."""
    with pytest.raises(McpServersError) as refused:
        McpServers.parse(text)
    assert "12345678901" not in str(refused.value)
    assert "servers.x: " in str(refused.value)
    assert "\n" not in str(refused.value)  # one line


def test_a_file_nested_past_the_recursion_limit_is_refused() -> None:
    from tests.support.recursion import default_recursion_limit

    # A RecursionError escaped tomllib: a traceback and exit 1 instead of the file named.
    text = "x = " + "[" * 100_000 + "]" * 100_000
    with default_recursion_limit(), pytest.raises(McpServersError, match="nested too deeply"):
        McpServers.parse(text, source="servers.toml")
