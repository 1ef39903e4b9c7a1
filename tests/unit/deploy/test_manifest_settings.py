"""Every AGENT_RUNTIME_* variable the deployment files set is a setting some process reads.

Settings ignore unknown variables (`extra="ignore"`), so a misspelt name in a ConfigMap or a
Deployment would be dropped without a word and the process would run on its default.
"""

import re
from pathlib import Path

import pytest

from services.agent_orchestration.settings import OrchestrationSettings
from services.audit.settings import AuditSettings
from services.cli.settings import CliSettings
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.settings import ENV_PREFIX, RuntimeSettings
from services.session_commands.settings import SessionCommandsSettings
from services.tool_invocation.settings import ToolInvocationSettings

pytestmark = pytest.mark.unit

_ROOT = Path(__file__).resolve().parents[3]
_FILES = sorted(
    [
        *(_ROOT / "deploy" / "kubernetes").rglob("*.yaml"),
        *(_ROOT / "deploy" / "kubernetes").rglob("*.env"),
        _ROOT / "compose.kafka.yml",
    ]
)
_NAME = re.compile(rf"\b{ENV_PREFIX}[A-Z0-9_]+\b")
# The gateway's settings (services/gateway/settings.py) are checked once that package is part
# of this tree; until then its three variables are the only ones taken on trust.
_GATEWAY = {
    f"{ENV_PREFIX}GATEWAY_PORT",
    f"{ENV_PREFIX}GATEWAY_API_KEYS",
    f"{ENV_PREFIX}GATEWAY_API_KEYS_FILE",
}


def _known() -> set[str]:
    classes: list[type[RuntimeSettings]] = [
        RuntimeSettings,
        SessionCommandsSettings,
        OrchestrationSettings,
        LLMInvocationSettings,
        AuditSettings,
        ToolInvocationSettings,
        CliSettings,
    ]
    try:
        from services.gateway.settings import GatewaySettings  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:
        extra = _GATEWAY
    else:
        classes.append(GatewaySettings)
        extra = set()
    return {f"{ENV_PREFIX}{name.upper()}" for c in classes for name in c.model_fields} | extra


@pytest.mark.parametrize("path", _FILES, ids=lambda p: str(p.relative_to(_ROOT)))
def test_every_variable_set_is_a_setting(path: Path) -> None:
    unknown = set(_NAME.findall(path.read_text())) - _known()
    assert not unknown, f"{path.name}: no setting reads {sorted(unknown)}"


def test_the_files_are_found() -> None:
    assert len(_FILES) > 10
