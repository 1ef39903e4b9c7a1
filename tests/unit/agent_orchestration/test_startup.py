"""Start-up: the catalogue is validated before anything is consumed, with a readable error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.topics import TopicName
from services.agent_orchestration.app import build
from services.agent_orchestration.catalogue_file import CatalogueError
from services.agent_orchestration.handler import INPUTS
from services.agent_orchestration.settings import OrchestrationSettings

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]


def _bad_catalogue(tmp_path: Path) -> Path:
    path = tmp_path / "agents.json"
    path.write_text(json.dumps({"agents": {"coder": {"description": "x"}}}), encoding="utf-8")
    return path


def test_build_refuses_an_invalid_catalogue(tmp_path: Path) -> None:
    settings = OrchestrationSettings(agent_catalogue_path=_bad_catalogue(tmp_path))

    with pytest.raises(CatalogueError, match=r"agents\.coder\.system_prompt: Field required"):
        build(settings, configure_logs=False)


def test_the_service_process_exits_with_the_error_and_no_traceback(tmp_path: Path) -> None:
    path = _bad_catalogue(tmp_path)
    env = {**os.environ, "AGENT_RUNTIME_AGENT_CATALOGUE_PATH": str(path)}

    result = subprocess.run(
        [sys.executable, "-m", "services.agent_orchestration"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert f"invalid agent catalogue {path}" in result.stderr
    assert "agents.coder.system_prompt: Field required" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_decide_topics_and_limits() -> None:
    settings = OrchestrationSettings(topic_prefix="x.", max_hops_per_turn=3)

    service = build(settings, configure_logs=False)

    assert service.topics.names(INPUTS) == ("x.session-events", "x.llm-results")
    assert service.topics.names((TopicName.LLM_REQUESTS, TopicName.TURNS)) == (
        "x.llm-requests",
        "x.turns",
    )
    assert settings.prompt_limits().max_hops_per_turn == 3
