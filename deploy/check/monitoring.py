"""The monitoring pack, checked without a cluster: alert rules and dashboard queries for promtool.

    python deploy/check/monitoring.py RENDERED_YAML DASHBOARD_JSON OUT_DIR

- the PrometheusRule of the rendered bundle → OUT_DIR/agent-runtime-rules.yaml, the plain rule
  file `promtool check rules` and `promtool test rules` read;
- the Grafana dashboard: its shape against deploy/check/schemas/grafana-dashboard.json, unique
  panel ids, unique refIds per panel, panels within the 24-column grid; then every query as a
  recording rule → OUT_DIR/dashboard-queries.yaml, so that promtool parses each one
  (`$__rate_interval` → 5m, `$namespace` → .*, as Grafana would expand them).

That each query names metrics the services really export is a test of the project
(tests/unit/deploy/test_monitoring_pack.py), run by `make deploy-check` too.
Runs in the deploy-check tool venv (`make deploy-check`), not the project's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_SCHEMA = Path(__file__).parent / "schemas" / "grafana-dashboard.json"
_GRID_COLUMNS = 24
# Longest name first: `$__rate_interval` is a prefix of `$__rate_interval_ms`.
GRAFANA_VARIABLES = {
    "$__rate_interval_ms": "300000",
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$namespace": ".*",
}


def rule_file(rendered: Path) -> dict[str, Any]:
    rules = [
        document
        for document in yaml.safe_load_all(rendered.read_text())
        if document and document.get("kind") == "PrometheusRule"
    ]
    if not rules:
        raise SystemExit(f"{rendered}: no PrometheusRule (components/monitoring not included?)")
    return {"groups": [group for rule in rules for group in rule["spec"]["groups"]]}


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(_SCHEMA.read_text()))
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(dashboard)
    ]
    seen: set[int] = set()
    for panel in dashboard.get("panels", []):
        name = f"panel {panel.get('id')} ({panel.get('title')!r})"
        if panel.get("id") in seen:
            problems.append(f"{name}: duplicate id")
        seen.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if grid.get("x", 0) + grid.get("w", 0) > _GRID_COLUMNS:
            problems.append(f"{name}: wider than the {_GRID_COLUMNS}-column grid")
        refs = [target.get("refId") for target in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"{name}: duplicate refId")
    return problems


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def query_rules(dashboard: dict[str, Any]) -> dict[str, Any]:
    rules = [
        {"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expand(target["expr"])}
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    return {"groups": [{"name": "dashboard-queries", "rules": rules}]}


def main(rendered: Path, dashboard_path: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "agent-runtime-rules.yaml").write_text(yaml.safe_dump(rule_file(rendered)))
    dashboard = json.loads(dashboard_path.read_text())
    problems = dashboard_problems(dashboard)
    if problems:
        for problem in problems:
            print(f"{dashboard_path}: {problem}", file=sys.stderr)
        return 1
    queries = query_rules(dashboard)
    (out / "dashboard-queries.yaml").write_text(yaml.safe_dump(queries))
    panels = sum(1 for p in dashboard["panels"] if p.get("type") != "row")
    count = len(queries["groups"][0]["rules"])
    print(f"{dashboard_path}: {panels} panels, {count} queries: shape valid")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    raise SystemExit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
