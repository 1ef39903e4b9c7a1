"""`python -m services.audit`: run the audit service until SIGTERM / SIGINT (drains first)."""

from services.audit.app import build
from services.audit.settings import AuditSettings
from services.runtime.settings_errors import built, load_settings


def main() -> None:
    settings = load_settings(AuditSettings, "audit")
    built("audit", lambda: build(settings)).runtime.run()


if __name__ == "__main__":
    main()
