"""tool-invocation: calls catalogue tools that run on MCP servers (docs/tool-invocation.md)."""
