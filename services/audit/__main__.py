"""`python -m services.audit`: run the audit service until SIGTERM / SIGINT (drains first)."""

from services.audit.app import build
from services.audit.settings import AuditSettings
from services.runtime.settings_errors import load_settings


def main() -> None:
    build(load_settings(AuditSettings, "audit")).runtime.run()


if __name__ == "__main__":
    main()
