"""Validate rendered manifests: Kubernetes API schemas, KEDA CRD schemas, the project's rules.

    python deploy/check/validate_manifests.py [--kubernetes-version 1.33] [--no-secrets] FILE...

- Kubernetes kinds: the API's JSON schemas shipped by `kubernetes-validate` (strict: an unknown
  field is an error, as the API server's strict field validation rejects it).
- KEDA and Prometheus Operator kinds: the schemas in deploy/check/schemas/, written from their
  CRDs; a ScaledObject's HPA `behavior` (a bare object in KEDA's CRD) as the HPA's own field.
- Any other kind fails: nothing is applied unchecked.
- Rules of this project that no schema expresses: no `replicas` on a Deployment that KEDA or an
  HPA scales (every apply would reset the count); a kafka trigger's `lagThreshold` equals its
  Deployment's AGENT_RUNTIME_MAX_IN_FLIGHT (in-flight records count as lag) and every
  `…FromEnv` it names is in that Deployment's env or ConfigMap; every container has a read-only root
  filesystem and a startupProbe (Deployments); every Deployment has a PodDisruptionBudget; with
  `--no-secrets`, no Secret in the bundle (production: the platform owns them, an apply must
  never overwrite one); with a Namespace in the bundle, every namespaced resource is in it; every
  ConfigMap and Secret a workload needs and every TriggerAuthentication a ScaledObject names is
  in the bundle, same name and namespace (Secrets not with `--no-secrets`).

Runs in the deploy-check tool venv (`make deploy-check`), not the project's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

_SCHEMAS = Path(__file__).parent / "schemas"
_CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication-keda-v1alpha1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring-v1.json",
}
_WORKLOADS = {"Deployment", "Job"}

Resource = dict[str, Any]


def documents(path: Path) -> Iterator[Resource]:
    with path.open() as file:
        for document in yaml.safe_load_all(file):
            if document:
                yield document


def schema_errors(resource: Resource, kubernetes_version: str) -> list[str]:
    key = (resource.get("apiVersion", ""), resource.get("kind", ""))
    if key in _CUSTOM:
        schema = json.loads((_SCHEMAS / _CUSTOM[key]).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(resource)
        ] + hpa_behavior_errors(resource, kubernetes_version)
    try:
        kubernetes_validate.validate(resource, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(str(p) for p in error.path) or '(root)'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[1]} {key[0]}: add one to deploy/check/schemas/"]
    return []


def hpa_behavior_errors(resource: Resource, kubernetes_version: str) -> list[str]:
    """A ScaledObject's `advanced.horizontalPodAutoscalerConfig.behavior` is copied into the HPA
    KEDA creates (its CRD types it as a bare object): checked as that HPA's `spec.behavior`."""
    if resource.get("kind") != "ScaledObject":
        return []
    advanced = resource.get("spec", {}).get("advanced", {})
    behavior = advanced.get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is None:
        return []
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "maxReplicas": 1,
            "behavior": behavior,
        },
    }
    try:
        kubernetes_validate.validate(hpa, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        return [f"spec.advanced.horizontalPodAutoscalerConfig.behavior ({path}): {error.message}"]
    return []


def _name(resource: Resource) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def _pod_spec(resource: Resource) -> Resource:
    spec: Resource = resource["spec"]["template"]["spec"]
    return spec


def _environment(resources: list[Resource], deployment: Resource) -> dict[str, str]:
    """What KEDA resolves from the first container: its ConfigMaps' data, then its env (the
    Secrets' keys are unknown here, so a `…FromEnv` must not point into one)."""
    container = _pod_spec(deployment)["containers"][0]
    config_maps = {
        r["metadata"]["name"]: r.get("data", {}) for r in resources if r["kind"] == "ConfigMap"
    }
    environment: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config_maps.get(source["configMapRef"]["name"], {}))
    environment.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    return environment


def trigger_errors(resources: list[Resource]) -> list[str]:
    errors: list[str] = []
    deployments = {r["metadata"]["name"]: r for r in resources if r["kind"] == "Deployment"}
    for scaled in (r for r in resources if r["kind"] == "ScaledObject"):
        target = deployments.get(scaled["spec"]["scaleTargetRef"]["name"])
        if target is None:
            errors.append(f"{_name(scaled)}: scales a Deployment that is not in the bundle")
            continue
        environment = _environment(resources, target)
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] != "kafka":
                continue
            metadata = trigger["metadata"]
            for key, value in metadata.items():
                if key.endswith("FromEnv") and value not in environment:
                    errors.append(f"{_name(scaled)}: {key} {value} is not in {_name(target)}'s env")
            in_flight = environment.get("AGENT_RUNTIME_MAX_IN_FLIGHT")
            if metadata.get("lagThreshold") != in_flight:
                errors.append(
                    f"{_name(scaled)}: lagThreshold {metadata.get('lagThreshold')} is not "
                    f"{_name(target)}'s AGENT_RUNTIME_MAX_IN_FLIGHT ({in_flight})"
                )
    return errors


_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}


def namespace_errors(resources: list[Resource]) -> list[str]:
    """With a Namespace in the bundle, everything namespaced is in it: a resource without a
    namespace lands wherever kubectl points, away from what refers to it by name."""
    namespaces = [r["metadata"]["name"] for r in resources if r["kind"] == "Namespace"]
    if len(namespaces) != 1:
        return []
    (wanted,) = namespaces
    return [
        f"{_name(r)}: in namespace {r['metadata'].get('namespace')!r}, not {wanted!r}"
        for r in resources
        if r["kind"] not in _CLUSTER_SCOPED and r["metadata"].get("namespace") != wanted
    ]


def _references(pod: Resource) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a pod spec needs (not the optional ones)."""
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = source.get(key)
                if ref and not ref.get("optional"):
                    yield kind, ref["name"]
        for variable in container.get("env", []):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = variable.get("valueFrom", {}).get(key)
                if ref and not ref.get("optional"):
                    yield kind, ref["name"]
    for volume in pod.get("volumes", []):
        if "secret" in volume and not volume["secret"].get("optional"):
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume and not volume["configMap"].get("optional"):
            yield "ConfigMap", volume["configMap"]["name"]


def reference_errors(resources: list[Resource], *, no_secrets: bool) -> list[str]:
    """Every ConfigMap and Secret a workload needs, and every TriggerAuthentication a
    ScaledObject names, is in the bundle under that name and namespace (Secrets only when the
    bundle carries them: with `--no-secrets` the platform provides them)."""
    present = {
        (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace")) for r in resources
    }
    errors: list[str] = []
    for resource in resources:
        namespace = resource["metadata"].get("namespace")
        needed: list[tuple[str, str]] = []
        if resource["kind"] in _WORKLOADS:
            needed = list(_references(_pod_spec(resource)))
        if resource["kind"] == "ScaledObject":
            needed = [
                ("TriggerAuthentication", trigger["authenticationRef"]["name"])
                for trigger in resource["spec"]["triggers"]
                if "authenticationRef" in trigger
            ]
        for kind, name in needed:
            if kind == "Secret" and no_secrets:
                continue
            if (kind, name, namespace) not in present:
                errors.append(f"{_name(resource)}: needs {kind}/{name} in {namespace!r}: none")
    return errors


def rule_errors(resources: list[Resource], *, no_secrets: bool) -> list[str]:
    errors: list[str] = trigger_errors(resources)
    errors += namespace_errors(resources)
    errors += reference_errors(resources, no_secrets=no_secrets)
    scaled = {
        r["spec"]["scaleTargetRef"]["name"]
        for r in resources
        if r["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}
    }
    budgets = [
        r["spec"]["selector"]["matchLabels"]
        for r in resources
        if r["kind"] == "PodDisruptionBudget"
    ]
    for resource in resources:
        kind, name = resource["kind"], resource["metadata"]["name"]
        if kind == "Secret" and no_secrets:
            errors.append(
                f"{_name(resource)}: a Secret in this bundle would overwrite the real one"
            )
        if kind not in _WORKLOADS:
            continue
        if kind == "Deployment":
            if name in scaled and "replicas" in resource["spec"]:
                errors.append(f"{_name(resource)}: sets replicas although an autoscaler owns them")
            labels = resource["spec"]["template"]["metadata"].get("labels", {})
            if not any(selector.items() <= labels.items() for selector in budgets):
                errors.append(f"{_name(resource)}: no PodDisruptionBudget selects its pods")
        for container in _pod_spec(resource)["containers"]:
            security = container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem") is not True:
                errors.append(
                    f"{_name(resource)}: {container['name']}: root filesystem not read-only"
                )
            if kind == "Deployment" and "startupProbe" not in container:
                errors.append(f"{_name(resource)}: {container['name']}: no startupProbe")
    return errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--kubernetes-version", default="1.33")
    parser.add_argument("--no-secrets", action="store_true")
    args = parser.parse_args(argv)
    failures = 0
    for path in args.files:
        resources = list(documents(path))
        problems = [
            f"{_name(resource)}: {error}"
            for resource in resources
            for error in schema_errors(resource, args.kubernetes_version)
        ]
        problems += rule_errors(resources, no_secrets=args.no_secrets)
        for problem in problems:
            print(f"{path}: {problem}")
        failures += len(problems)
        if not problems:
            kinds = sorted({r["kind"] for r in resources})
            print(f"{path}: {len(resources)} resources valid ({', '.join(kinds)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
