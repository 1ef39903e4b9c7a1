"""`python -m services.audit`: run the audit service until SIGTERM / SIGINT (drains first)."""

import asyncio

from services.audit.app import build


def main() -> None:
    asyncio.run(build().runtime.app.run())


if __name__ == "__main__":
    main()
