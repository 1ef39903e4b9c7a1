"""`python -m services.tool_invocation`: run tool-invocation until SIGTERM / SIGINT (drains first)."""

from services.runtime.settings_errors import built, load_settings
from services.tool_invocation.app import build
from services.tool_invocation.settings import ToolInvocationSettings


def main() -> None:
    settings = load_settings(ToolInvocationSettings, "tool-invocation")
    built("tool-invocation", lambda: build(settings)).runtime.run()


if __name__ == "__main__":
    main()
