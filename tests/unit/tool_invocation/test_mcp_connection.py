"""What the kept-open MCP session logs about a lost connection is scrubbed of secrets: the
reason is a server's or a transport's text, which may quote a credential."""

import logging

import pytest

from services.tool_invocation.mcp_connection import McpConnection
from services.tool_invocation.mcp_servers import McpServer

pytestmark = pytest.mark.unit

SECRET = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


async def test_a_lost_connection_s_reason_is_logged_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = McpConnection(McpServer(name="demo", url="http://demo/mcp"))
    client = object()
    connection._client = client  # type: ignore[assignment]  # the session a call found dead
    with caplog.at_level(logging.WARNING, logger="services.tool_invocation.mcp_connection"):
        await connection.broken(client, f"proxy said: key {SECRET} refused")
    assert "connection lost" in caplog.text
    assert SECRET not in caplog.text
