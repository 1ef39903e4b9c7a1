"""The in-memory kept results the handler tests use, held to the kept-results contract."""

import pytest

from tests.support.llm_invocation.fake_ports import MemoryResults
from tests.support.llm_invocation.results_contract import KeptResultsContract

pytestmark = pytest.mark.unit


class TestMemoryResults(KeptResultsContract):
    @pytest.fixture
    def results(self) -> MemoryResults:
        return MemoryResults()
