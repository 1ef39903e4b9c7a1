"""The collector's configuration (deploy/kubernetes/otel-collector.yaml): memory_limiter first
in every pipeline, every component a pipeline names is defined, metrics really leave."""

from pathlib import Path
from typing import Any, Final

import pytest
import yaml

pytestmark = pytest.mark.unit

MANIFEST: Final = (
    Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "otel-collector.yaml"
)


def collector_config() -> dict[str, Any]:
    [config_map] = [
        d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == "ConfigMap"
    ]
    config: dict[str, Any] = yaml.safe_load(config_map["data"]["collector.yaml"])
    return config


def test_memory_limiter_comes_first_in_every_pipeline() -> None:
    pipelines = collector_config()["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics"}
    for name, pipeline in pipelines.items():
        assert pipeline["processors"][0] == "memory_limiter", name


def test_every_component_a_pipeline_names_is_defined() -> None:
    config = collector_config()
    connectors = set(config.get("connectors", {}))
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            defined = set(config.get(kind, {}))
            if kind != "processors":
                defined |= connectors  # a connector is an exporter of one, a receiver of another
            missing = set(pipeline[kind]) - defined
            assert not missing, f"{name}: {kind} {missing} not defined"
    assert set(config["service"]["extensions"]) <= set(config["extensions"])


def test_metrics_are_exported_for_real_and_fed_by_the_traces() -> None:
    config = collector_config()
    metrics = config["service"]["pipelines"]["metrics"]
    assert "prometheus" in metrics["exporters"]  # not only `debug`
    assert "spanmetrics" in metrics["receivers"]
    assert "spanmetrics" in config["service"]["pipelines"]["traces"]["exporters"]
