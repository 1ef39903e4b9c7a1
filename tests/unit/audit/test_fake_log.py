"""The in-memory audit log the handler tests use, held to the audit log contract."""

import pytest

from tests.support.audit.fakes import FakeLog
from tests.support.audit.log_contract import AuditLogContract

pytestmark = pytest.mark.unit


class TestFakeLog(AuditLogContract):
    @pytest.fixture
    def log(self) -> FakeLog:
        return FakeLog()
