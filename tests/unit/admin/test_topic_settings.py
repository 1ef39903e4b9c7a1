"""`python -m services.admin.topics` provisions from the services' own settings."""

from collections.abc import Sequence
from typing import Any

import pytest

from services.admin import topics
from services.admin.topics import ProvisioningReport, TopicSpecLike, _catalogue_specs
from services.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.unit


def test_topics_follow_the_services_prefix_and_durability_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("AGENT_RUNTIME_TOPIC_MIN_INSYNC_REPLICAS", "2")

    specs = _catalogue_specs(RuntimeSettings(), prefix=None, partitions=None)

    assert all(s.name.startswith("prod.") for s in specs)
    assert {s.replication_factor for s in specs} == {3}
    assert {s.config["min.insync.replicas"] for s in specs} == {"2"}
    assert {s.config["unclean.leader.election.enable"] for s in specs} == {"false"}


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValueError, match="topic_min_insync_replicas"):
        RuntimeSettings(topic_replication_factor=1, topic_min_insync_replicas=2)


def test_provisioning_names_its_client_after_the_prefix_it_provisions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `client.id` = prefix + `topics` (docs/operations.md, Processes), `--prefix` included.
    seen: list[str] = []

    async def provisioned(
        bootstrap: str, specs: Sequence[TopicSpecLike], **options: Any
    ) -> ProvisioningReport:
        seen.append(options["client_id"])
        return ProvisioningReport(created=(), already_present=(), configs_updated=())

    monkeypatch.delenv("AGENT_RUNTIME_TOPIC_PREFIX", raising=False)
    monkeypatch.setattr(topics, "ensure_topics", provisioned)
    assert topics.main(["--prefix", "prod."]) == 0
    assert topics.main([]) == 0
    assert seen == ["prod.topics", "agent-runtime.topics"]


def test_help_answers_whatever_the_settings_hold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Job's `--help` or a typo'd setting: the usage, named as it is run, not a settings error.
    monkeypatch.setenv("AGENT_RUNTIME_MAX_IN_FLIGHT", "0")

    with pytest.raises(SystemExit) as exited:
        topics.main(["--help"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m services.admin.topics ")
