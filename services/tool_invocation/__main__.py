"""`python -m services.tool_invocation`: run tool-invocation until SIGTERM / SIGINT (drains first)."""

from services.tool_invocation.app import build


def main() -> None:
    build().runtime.run()


if __name__ == "__main__":
    main()
