"""Provider selection from the environment; the API key never shows."""

import pytest
from pydantic import ValidationError

from services.llm_invocation.providers.offline_provider import OfflineProvider
from services.llm_invocation.providers.openai_provider import OpenAICompatibleProvider
from services.llm_invocation.providers.provider_selection import build_provider
from services.llm_invocation.settings import LLMInvocationSettings

pytestmark = pytest.mark.unit

PROVIDER_VARIABLES = [
    prefix + name
    for prefix in ("", "AGENT_RUNTIME_")
    for name in ("LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "LLM_PROVIDER")
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in PROVIDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # no .env of the developer's


def test_with_nothing_set_the_offline_provider_runs() -> None:
    settings = LLMInvocationSettings()
    assert settings.provider_kind == "offline"
    assert isinstance(build_provider(settings), OfflineProvider)


@pytest.mark.parametrize("prefix", ["", "AGENT_RUNTIME_"])
async def test_the_plain_and_the_prefixed_variables_select_the_openai_provider(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    monkeypatch.setenv(f"{prefix}LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv(f"{prefix}LLM_API_KEY", "sk-secret-value")
    monkeypatch.setenv(f"{prefix}LLM_MODEL", "llama3.1")
    settings = LLMInvocationSettings()
    assert settings.provider_kind == "openai"
    assert settings.llm_model == "llama3.1"
    provider = build_provider(settings)
    assert isinstance(provider, OpenAICompatibleProvider)
    await provider.aclose()
    assert "sk-secret-value" not in repr(settings)
    assert "sk-secret-value" not in str(settings.model_dump())


def test_a_configured_provider_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_KEY", "sk-x")
    with pytest.raises(ValidationError, match="LLM_MODEL"):
        LLMInvocationSettings()


def test_offline_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("AGENT_RUNTIME_LLM_PROVIDER", "offline")
    assert LLMInvocationSettings().provider_kind == "offline"


def test_fields_can_be_set_by_name() -> None:
    settings = LLMInvocationSettings(llm_base_url="http://x/v1", llm_model="m")
    assert settings.provider_kind == "openai"


def test_a_first_circuit_trial_later_than_the_longest_wait_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/llm-invocation.md: the first trial runs LLM_CIRCUIT_FIRST_TRIAL_S after opening,
    # then the wait doubles up to LLM_CIRCUIT_TTL_S. 30 s against 10 s was quietly capped to
    # 10 s; a rule between two settings is refused at start-up, naming both.
    monkeypatch.setenv("AGENT_RUNTIME_LLM_CIRCUIT_FIRST_TRIAL_S", "30")
    monkeypatch.setenv("AGENT_RUNTIME_LLM_CIRCUIT_TTL_S", "10")
    with pytest.raises(
        ValidationError, match="llm_circuit_first_trial_s must be <= llm_circuit_ttl_s"
    ):
        LLMInvocationSettings()
    monkeypatch.setenv("AGENT_RUNTIME_LLM_CIRCUIT_FIRST_TRIAL_S", "10")
    assert LLMInvocationSettings().llm_circuit_first_trial_s == 10
