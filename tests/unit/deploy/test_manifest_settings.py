"""Every AGENT_RUNTIME_* variable the deployment files set is a setting some process reads.

Settings ignore unknown variables (`extra="ignore"`), so a misspelt name in a ConfigMap or a
Deployment would be dropped without a word and the process would run on its default. Every file
is read as text, comments included (a variable a comment tells the reader to set must exist too);
test_rendered_manifests.py checks each rendered workload against its own process's settings.
"""

import re
from pathlib import Path

import pytest

from services.agent_orchestration.settings import OrchestrationSettings
from services.audit.settings import AuditSettings
from services.cli.settings import CliSettings
from services.gateway.settings import GatewaySettings
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


def _known() -> set[str]:
    classes: list[type[RuntimeSettings]] = [
        RuntimeSettings,
        SessionCommandsSettings,
        OrchestrationSettings,
        LLMInvocationSettings,
        AuditSettings,
        ToolInvocationSettings,
        CliSettings,
        GatewaySettings,
    ]
    return {f"{ENV_PREFIX}{name.upper()}" for c in classes for name in c.model_fields}


@pytest.mark.parametrize("path", _FILES, ids=lambda p: str(p.relative_to(_ROOT)))
def test_every_variable_set_is_a_setting(path: Path) -> None:
    unknown = set(_NAME.findall(path.read_text())) - _known()
    assert not unknown, f"{path.name}: no setting reads {sorted(unknown)}"


def test_the_files_are_found() -> None:
    assert len(_FILES) > 10
