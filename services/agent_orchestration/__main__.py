"""`python -m services.agent_orchestration`: run until SIGTERM / SIGINT (drains first)."""

from services.agent_orchestration.app import build
from services.agent_orchestration.settings import OrchestrationSettings
from services.runtime.settings_errors import built, load_settings


def main() -> None:
    settings = load_settings(OrchestrationSettings, "agent-orchestration")
    built("agent-orchestration", lambda: build(settings)).runtime.run()


if __name__ == "__main__":
    main()
