"""Builders for the cancellation decider tests (scenario.py holds the others)."""

from typing import Any

from contracts.commands import CancelTurn
from tests.support.session_commands.scenario import SESSION, TENANT, next_id


def cancel_turn(**fields: Any) -> CancelTurn:
    return CancelTurn(**{"id": next_id(), "session_id": SESSION, "tenant_id": TENANT, **fields})
