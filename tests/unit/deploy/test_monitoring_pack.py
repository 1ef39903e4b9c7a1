"""The monitoring pack names only metrics the services export, and its docs say what it holds.

- every metric in a dashboard query or an alert rule is one the services register (collected
  from the code's own registries, not from a list kept by hand);
- docs/operations.md lists every metric the services export, and its rendered list of the
  dashboard's panels is the dashboard's (print the list with
  `.venv/bin/python -m tests.unit.deploy.test_monitoring_pack`).

`make deploy-check` runs this module too, after promtool checked the queries' syntax.
"""

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from services.audit.fact_metrics import FactMetrics
from services.audit.llm_prices import LLMPrices
from services.runtime.telemetry.metrics import RuntimeMetrics

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parents[3]
MONITORING: Final = ROOT / "deploy" / "kubernetes" / "components" / "monitoring"
DASHBOARD: Final = MONITORING / "agent-runtime-dashboard.json"
RULES: Final = MONITORING / "prometheus-rule.yaml"
OPERATIONS: Final = ROOT / "docs" / "operations.md"
PANELS_BEGIN: Final = "<!-- dashboard panels: begin -->"
PANELS_END: Final = "<!-- dashboard panels: end -->"

_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
_NOT_A_SELECTOR: Final = re.compile(
    r"\{[^}]*\}"  # label matchers
    r"|\"[^\"]*\""  # strings
    r"|\[[^\]]*\]"  # ranges
    r"|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"  # label lists
    r"|\$\w+"  # Grafana variables ($__rate_interval_ms)
)
_IDENTIFIER: Final = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()")
_KEYWORDS: Final = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Series Prometheus writes itself for every target it scrapes (no service exports them).
_SCRAPE_SERIES: Final = {"up"}
BASE: Final = ROOT / "deploy" / "kubernetes" / "base"
POD_MONITOR: Final = MONITORING / "pod-monitor.yaml"


def exported_families() -> dict[str, str]:
    """Every metric family the services register: name -> type."""
    # Module-level metrics register in the default registry when imported.
    import services.gateway.edge
    import services.gateway.streams
    import services.llm_invocation.metrics
    import services.session_commands.metrics
    import services.tool_invocation.metrics  # noqa: F401

    registry = CollectorRegistry()
    RuntimeMetrics("svc", registry)
    FactMetrics(registry, LLMPrices({}))
    families: dict[str, str] = {}
    for source in (registry, REGISTRY):
        for family in source.collect():
            families[family.name] = family.type
    return families


def exported_series_names() -> set[str]:
    return {
        f"{name}{suffix}"
        for name, kind in exported_families().items()
        for suffix in _SUFFIXES.get(kind, ("",))
    }


def metric_names(expr: str) -> set[str]:
    bare = _NOT_A_SELECTOR.sub(" ", expr)
    return {name for name in _IDENTIFIER.findall(bare) if name not in _KEYWORDS}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[tuple[str, str]]:
    rule = yaml.safe_load(RULES.read_text())
    return [(r["alert"], r["expr"]) for g in rule["spec"]["groups"] for r in g["rules"]]


def test_the_expression_parser_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, group) (rate(x_bucket{a="b"}[5m]))) '
        "/ ignoring(c) y_total > bool 0 unless on(d) z"
    )
    assert metric_names(expr) == {"x_bucket", "y_total", "z"}


@pytest.mark.parametrize(("where", "expr"), [*dashboard_queries(), *alert_rules()])
def test_every_query_names_metrics_the_services_export(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - exported_series_names() - _SCRAPE_SERIES
    assert not unknown, f"{where}: {sorted(unknown)} not exported by any service"


def test_every_alert_has_its_runbook_in_the_operations_doc() -> None:
    rule = yaml.safe_load(RULES.read_text())
    headings = set(re.findall(r"^#{2,6} (\S+)$", OPERATIONS.read_text(), re.M))
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            name = alert["alert"]
            assert alert["annotations"]["runbook"] == f"docs/operations.md#{name.lower()}"
            assert name in headings, f"docs/operations.md has no section {name}"


def test_the_service_down_alert_covers_every_deployment_by_the_pod_monitors_label() -> None:
    """`up` is the only series of a service whose pods are all down: the alert must name every
    Deployment, by the label the PodMonitor gives the targets (a new service is not forgotten)."""
    rule = dict(alert_rules())["AgentRuntimeServiceDown"]
    pod_monitor = yaml.safe_load(POD_MONITOR.read_text())
    [target_label] = pod_monitor["spec"]["podTargetLabels"]
    # The Prometheus Operator turns a pod label into a target label as Prometheus sanitises it.
    label = re.sub(r"[^a-zA-Z0-9_]", "_", target_label)
    match = re.search(rf'\bup\{{{label}=~"([^"]+)"\}}', rule)
    assert match, f"AgentRuntimeServiceDown does not select up by {label}: {rule!r}"
    deployments = {
        document["metadata"]["name"]
        for path in BASE.glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if isinstance(document, dict) and document.get("kind") == "Deployment"
    }
    assert set(match.group(1).split("|")) == deployments
    assert f"by (namespace, {label})" in rule


def test_the_metric_reference_lists_every_metric_the_services_export() -> None:
    text = OPERATIONS.read_text()
    own = [name for name in exported_families() if not name.startswith(("process_", "python_"))]
    missing = [name for name in own if f"`{name}" not in text]
    assert not missing, f"docs/operations.md does not list {missing}"


_REFERENCE_ROW: Final = re.compile(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| \w+ \|([^|]*)\|", re.M)


def exported_label_names() -> dict[str, tuple[str, ...]]:
    """Every metric the services register, by its name as scraped (`…_total` for a counter):
    its label names, sorted."""
    exported_families()  # imports the module-level metrics
    registry = CollectorRegistry()
    RuntimeMetrics("svc", registry)
    FactMetrics(registry, LLMPrices({}))
    labels: dict[str, tuple[str, ...]] = {}
    for source in (registry, REGISTRY):
        for collector in list(source._collector_to_names):
            if isinstance(collector, MetricWrapperBase):
                suffix = "_total" if collector._type == "counter" else ""
                labels[collector._name + suffix] = tuple(sorted(collector._labelnames))
    return labels


def test_the_metric_reference_gives_each_metric_the_labels_it_has() -> None:
    exported = exported_label_names()
    wrong = {}
    for names, documented in _REFERENCE_ROW.findall(OPERATIONS.read_text()):
        said = tuple(sorted(re.findall(r"`([a-z_]+)`", documented)))
        for name in re.findall(r"`([a-z_]+)`", names):
            if name in exported and exported[name] != said:
                wrong[name] = f"documented {said}, exported {exported[name]}"
    assert not wrong, f"docs/operations.md's metric reference: {wrong}"


def render_panels() -> str:
    lines = ["| row | panel | queries (legend) |", "|---|---|---|"]
    row = ""
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        queries = "<br>".join(
            f"`{target['expr']}` ({target.get('legendFormat', '')})" for target in panel["targets"]
        )
        lines.append(f"| {row} | {panel['title']} | {queries} |")
    return "\n".join([PANELS_BEGIN, *lines, PANELS_END])


def test_the_docs_list_the_dashboards_panels_with_their_queries() -> None:
    text = OPERATIONS.read_text()
    start, end = text.find(PANELS_BEGIN), text.find(PANELS_END)
    assert start >= 0, f"docs/operations.md lacks {PANELS_BEGIN}"
    assert end > start, f"docs/operations.md lacks {PANELS_END} after {PANELS_BEGIN}"
    documented = text[start : end + len(PANELS_END)]
    assert documented == render_panels(), (
        "docs/operations.md's panel list differs from the dashboard; replace it with the "
        "output of `.venv/bin/python -m tests.unit.deploy.test_monitoring_pack`"
    )


if __name__ == "__main__":
    print(render_panels())
