"""`python -m services.llm_invocation`: run llm-invocation until SIGTERM / SIGINT (drains first)."""

from services.llm_invocation.app import build
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.settings_errors import built, load_settings


def main() -> None:
    settings = load_settings(LLMInvocationSettings, "llm-invocation")
    built("llm-invocation", lambda: build(settings)).runtime.run()


if __name__ == "__main__":
    main()
