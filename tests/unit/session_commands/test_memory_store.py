"""The in-memory session store the handler tests use, held to the store contract."""

import pytest

from tests.support.session_commands.memory_store import MemoryStore
from tests.support.session_commands.store_contract import SessionStoreContract

pytestmark = pytest.mark.unit


class TestMemorySessionStore(SessionStoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()
