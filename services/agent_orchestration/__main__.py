"""`python -m services.agent_orchestration`: run until SIGTERM / SIGINT (drains first)."""

import sys

from services.agent_orchestration.app import build
from services.agent_orchestration.catalogue_file import CatalogueError
from services.agent_orchestration.settings import OrchestrationSettings
from services.runtime.settings_errors import load_settings


def main() -> None:
    try:
        service = build(load_settings(OrchestrationSettings, "agent-orchestration"))
    except CatalogueError as exc:
        # An operator's mistake, not a crash: say what is wrong, without a traceback.
        print(f"agent-orchestration: {exc}", file=sys.stderr)
        sys.exit(2)
    service.runtime.run()


if __name__ == "__main__":
    main()
