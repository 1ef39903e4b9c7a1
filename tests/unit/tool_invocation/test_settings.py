import pytest
from pydantic import ValidationError

from services.tool_invocation.settings import ToolInvocationSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("first", "longest", "rule"),
    [
        # docs/tool-invocation.md: the first half-open trial after _TOOL_CIRCUIT_FIRST_TRIAL_S,
        # doubling up to _TOOL_CIRCUIT_TTL_S. 60 s against 30 s was quietly capped to 30 s.
        (
            "AGENT_RUNTIME_TOOL_CIRCUIT_FIRST_TRIAL_S",
            "AGENT_RUNTIME_TOOL_CIRCUIT_TTL_S",
            "tool_circuit_first_trial_s must be <= tool_circuit_ttl_s",
        ),
        (
            "AGENT_RUNTIME_TOOL_RETRY_INITIAL_BACKOFF_S",
            "AGENT_RUNTIME_TOOL_RETRY_MAX_BACKOFF_S",
            "tool_retry_initial_backoff_s must be <= tool_retry_max_backoff_s",
        ),
    ],
)
def test_a_first_wait_longer_than_the_longest_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, first: str, longest: str, rule: str
) -> None:
    monkeypatch.setenv(first, "60")
    monkeypatch.setenv(longest, "30")
    with pytest.raises(ValidationError, match=rule):
        ToolInvocationSettings()
    monkeypatch.setenv(first, "30")
    assert ToolInvocationSettings() is not None


@pytest.mark.parametrize(
    "variable",
    [
        # `inf` passed `gt=0`: a retention of inf crashed the start with an OverflowError
        # (exit 1, not the settings error), an interval or a circuit wait of inf never ends.
        "AGENT_RUNTIME_TOOL_RESULT_RETENTION_HOURS",
        "AGENT_RUNTIME_TOOL_RESULT_RETENTION_INTERVAL_S",
        "AGENT_RUNTIME_TOOL_CIRCUIT_TTL_S",
        "AGENT_RUNTIME_TOOL_CLAIM_LEASE_S",
    ],
)
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_setting_that_is_not_a_finite_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("AGENT_RUNTIME_").lower()):
        ToolInvocationSettings()
