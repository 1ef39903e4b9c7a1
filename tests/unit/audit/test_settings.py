import pytest
from pydantic import ValidationError

from services.audit.settings import AuditSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["audit_log", "audit-log.v2", "AuditLog_2"])
def test_a_collection_name_mongodb_takes_is_kept(name: str) -> None:
    assert AuditSettings.model_validate({"audit_log_collection": name}).audit_log_collection == name


@pytest.mark.parametrize("name", ["a$b", ".x", "x.", "a..b", "system.x", "a\x00b", "a b"])
def test_a_collection_name_mongodb_refuses_is_a_setting_error(name: str) -> None:
    # It was pymongo's InvalidName traceback at start (exit 1), or, for system.*, a log the
    # server would not write to.
    with pytest.raises(ValidationError, match="audit_log_collection"):
        AuditSettings.model_validate({"audit_log_collection": name})
