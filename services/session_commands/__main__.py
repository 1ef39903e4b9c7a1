"""`python -m services.session_commands`: run the service until SIGTERM / SIGINT (drains first)."""

import asyncio

from services.session_commands.app import build


def main() -> None:
    asyncio.run(build().runtime.app.run())


if __name__ == "__main__":
    main()
