"""`python -m services.admin.topics` provisions from the services' own settings."""

import pytest

from services.admin.topics import _catalogue_specs
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
