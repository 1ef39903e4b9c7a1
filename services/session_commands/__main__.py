"""`python -m services.session_commands`: run the service until SIGTERM / SIGINT (drains first)."""

from services.session_commands.app import build


def main() -> None:
    build().runtime.run()


if __name__ == "__main__":
    main()
