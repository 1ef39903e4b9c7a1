"""`python -m services.llm_invocation`: run llm-invocation until SIGTERM / SIGINT (drains first)."""

import asyncio

from services.llm_invocation.app import build


def main() -> None:
    asyncio.run(build().runtime.app.run())


if __name__ == "__main__":
    main()
