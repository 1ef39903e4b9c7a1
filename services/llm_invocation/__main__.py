"""`python -m services.llm_invocation`: run llm-invocation until SIGTERM / SIGINT (drains first)."""

from services.llm_invocation.app import build


def main() -> None:
    build().runtime.run()


if __name__ == "__main__":
    main()
