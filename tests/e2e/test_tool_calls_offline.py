"""Client-executed tools end to end with the offline provider (issue 20): the four services as
subprocesses on the real broker and database; the test answers the tool calls as the client."""

import pytest

from tests.e2e.conftest import Pipeline
from tests.e2e.tool_conversations import (
    another_tenants_result_is_refused,
    approval_approved_then_denied,
    cancel_while_awaiting_tools,
    client_tool_round_trip,
    deadline_fails_the_turn,
    parallel_calls_answered_out_of_order,
    run_scenarios,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    # Long enough for the answered scenarios on a loaded machine, short for the deadline one.
    return {
        "AGENT_RUNTIME_TOOL_CALL_TIMEOUT_S": "30",
        "AGENT_RUNTIME_TOOL_DEADLINE_INTERVAL_S": "1",
    }


async def test_tool_calls_with_the_offline_provider(pipeline: Pipeline) -> None:
    await run_scenarios(
        pipeline,
        [
            client_tool_round_trip,
            parallel_calls_answered_out_of_order,
            another_tenants_result_is_refused,
            approval_approved_then_denied,
            cancel_while_awaiting_tools,
            deadline_fails_the_turn,
        ],
    )
