"""`python -m services.tool_invocation`: run tool-invocation until SIGTERM / SIGINT (drains first)."""

from services.runtime.settings_errors import load_settings
from services.tool_invocation.app import build
from services.tool_invocation.settings import ToolInvocationSettings


def main() -> None:
    build(load_settings(ToolInvocationSettings, "tool-invocation")).runtime.run()


if __name__ == "__main__":
    main()
