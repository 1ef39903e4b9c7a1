"""`python -m services.audit`: run the audit service until SIGTERM / SIGINT (drains first)."""

from services.audit.app import build


def main() -> None:
    build().runtime.run()


if __name__ == "__main__":
    main()
