"""The `agent-runtime` command line: chat, demo, send, and operator commands."""
