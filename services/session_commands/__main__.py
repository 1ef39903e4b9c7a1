"""`python -m services.session_commands`: run the service until SIGTERM / SIGINT (drains first)."""

from services.runtime.settings_errors import built, load_settings
from services.session_commands.app import build
from services.session_commands.settings import SessionCommandsSettings


def main() -> None:
    settings = load_settings(SessionCommandsSettings, "session-commands")
    built("session-commands", lambda: build(settings)).runtime.run()


if __name__ == "__main__":
    main()
