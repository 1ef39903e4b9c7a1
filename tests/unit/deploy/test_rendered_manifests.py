"""What the rendered overlays give each process is what that process reads and serves.

`make deploy-check` validates the manifests' shape; this checks them against the code, per
workload of both overlays (as `kubectl kustomize` renders them) and per service of the compose
file:

- the container runs a module of this project that has settings, and every variable it gets
  (ConfigMaps, Secrets of the bundle, `env`) is one of *that* process's settings (or an `OTEL_*`
  variable, or a `KEDA_TOPIC_*` a trigger of its ScaledObject reads): settings ignore unknown
  variables, so a misspelt or misplaced one would be dropped without a word;
- those values are accepted: the settings class is built from exactly that environment
  (`$(VAR)` expanded as the kubelet does, mounted files present);
- probes, container ports, scrape annotations and the PodMonitor name the port and paths the
  process serves (its health port, or the gateway's API port);
- each KEDA trigger names the consumer group the service joins and a topic that group consumes,
  and together the triggers cover every topic it consumes; a scale-in removes one pod per
  period, longer than a leaving static member's drain and session timeout;
- the topics Job provisions with the overlay's durability, and over SASL_SSL every process logs
  in as its own principal of deploy/kafka/acls.toml.

`make deploy-check` runs it on the files it rendered (DEPLOY_CHECK_RENDERED); run alone, it
renders with `kubectl kustomize`. `make test` collects it only where one of the two is there
(conftest.py): without them it is deploy-check's, which fetches its own kustomize.
"""

import base64
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from pydantic import AliasChoices

from contracts.topics import DEFAULT_PARTITIONS, TopicName
from services.agent_orchestration.handler import INPUTS as ORCHESTRATION_INPUTS
from services.agent_orchestration.settings import OrchestrationSettings
from services.audit.handler import AUDITED_TOPICS
from services.audit.settings import AuditSettings
from services.gateway.settings import GatewaySettings
from services.llm_invocation.settings import LLMInvocationSettings
from services.runtime.health import READINESS_CHECK_TIMEOUT_S
from services.runtime.settings import ENV_PREFIX, RuntimeSettings
from services.session_commands.handler import INPUTS as SESSION_COMMANDS_INPUTS
from services.session_commands.settings import SessionCommandsSettings
from services.tool_invocation.mcp_servers import McpServers
from services.tool_invocation.settings import ToolInvocationSettings

pytestmark = pytest.mark.unit

ROOT: Final = Path(__file__).resolve().parents[3]
OVERLAYS: Final = ("local", "production")

Resource = dict[str, Any]


@dataclass(frozen=True)
class Process:
    settings: type[RuntimeSettings]
    # The consumer group setting KEDA scales on and the topics that group consumes.
    group_field: str | None = None
    consumes: tuple[TopicName, ...] = ()
    port_field: str = "health_port"


PROCESSES: Final[dict[str, Process]] = {
    "services.session_commands": Process(
        SessionCommandsSettings, "session_commands_consumer_group", SESSION_COMMANDS_INPUTS
    ),
    "services.agent_orchestration": Process(
        OrchestrationSettings, "orchestration_consumer_group", ORCHESTRATION_INPUTS
    ),
    "services.llm_invocation": Process(
        LLMInvocationSettings, "llm_consumer_group", (TopicName.LLM_REQUESTS,)
    ),
    "services.tool_invocation": Process(
        ToolInvocationSettings, "tool_consumer_group", (TopicName.SESSION_EVENTS,)
    ),
    "services.audit": Process(AuditSettings, "audit_consumer_group", AUDITED_TOPICS),
    "services.gateway": Process(GatewaySettings, port_field="gateway_port"),
    "services.admin.topics": Process(RuntimeSettings),
}


def env_names(settings: type[RuntimeSettings]) -> set[str]:
    """The variables a settings class reads: prefix + field, or its alias choices."""
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices}
        else:
            names.add(f"{ENV_PREFIX}{name.upper()}")
    return names


# --- the rendered bundle ------------------------------------------------------------------


@cache
def rendered(overlay: str) -> tuple[Resource, ...]:
    given = os.environ.get("DEPLOY_CHECK_RENDERED")
    if given:
        text = (Path(given) / f"{overlay}.yaml").read_text()
    else:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.fail("no kubectl to render the overlays: run `make deploy-check`, which does")
        path = ROOT / "deploy" / "kubernetes" / "overlays" / overlay
        text = subprocess.run(
            [kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True
        ).stdout
    return tuple(d for d in yaml.safe_load_all(text) if d)


def _of_kind(overlay: str, kind: str) -> list[Resource]:
    return [r for r in rendered(overlay) if r["kind"] == kind]


def _named(overlay: str, kind: str, name: str) -> Resource | None:
    return next((r for r in _of_kind(overlay, kind) if r["metadata"]["name"] == name), None)


def _workloads(overlay: str) -> list[Resource]:
    return _of_kind(overlay, "Deployment") + _of_kind(overlay, "Job")


def _container(workload: Resource) -> Resource:
    containers: list[Resource] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container expected"
    return containers[0]


def _module(workload: Resource) -> str:
    args: list[str] = _container(workload)["args"]
    assert len(args) == 1, f"{workload['metadata']['name']}: args {args}"
    return args[0]


def _data(resource: Resource) -> dict[str, str]:
    if resource["kind"] == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in resource.get("data", {}).items()}
    return dict(resource.get("data", {}))


def environment(overlay: str, workload: Resource) -> dict[str, str]:
    """The container's environment as the kubelet builds it (Secrets the platform provides,
    absent from the bundle, contribute nothing). `$(VAR)` expands to what is defined above."""
    container = _container(workload)
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        resource = _named(overlay, kind, ref["name"])
        if resource is not None:
            env.update(_data(resource))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"]
            )
        else:
            assert item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", item
            env[item["name"]] = f"{workload['metadata']['name']}-7d9f8c6b5-x2x4z"
    return env


def _trigger_env_names(overlay: str, deployment: str) -> set[str]:
    names: set[str] = set()
    for scaled in _of_kind(overlay, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == deployment:
            for trigger in scaled["spec"]["triggers"]:
                names |= {v for k, v in trigger["metadata"].items() if k.endswith("FromEnv")}
    return names


def _mounted_files(overlay: str, workload: Resource, root: Path) -> dict[str, Path]:
    """Every file the pod mounts, written under `root`: path in the pod -> local copy."""
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files: dict[str, Path] = {}
    for mount in _container(workload).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            projection = volume["configMap"]
            source = _named(overlay, "ConfigMap", projection["name"])
        elif "secret" in volume:
            projection = volume["secret"]
            source = _named(overlay, "Secret", projection["secretName"])
        else:
            continue
        # A Secret the platform provides: its documented keys, with stand-in contents.
        data = _data(source) if source is not None else _PLATFORM_SECRET_KEYS
        # `items` mounts only the keys it lists, under the paths it gives.
        paths = {i["key"]: i["path"] for i in projection.get("items", [])} or {k: k for k in data}
        for key, path in paths.items():
            content = data[key]
            local = root / mount["name"] / path
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(content)
            files[f"{mount['mountPath'].rstrip('/')}/{path}"] = local
    return files


# Keys of the Secrets deploy/kubernetes/README.md ("Secrets") says the platform provides.
_PLATFORM_SECRET_KEYS: Final = {
    "password": "stand-in\n",
    "ca.crt": "stand-in\n",
    "api-keys": "sha256:" + "0" * 64 + " tenant\n",
}


def build_settings(
    overlay: str, workload: Resource, root: Path, monkeypatch: pytest.MonkeyPatch
) -> RuntimeSettings:
    """The process's settings built from exactly the manifest's environment."""
    env = environment(overlay, workload)
    files = _mounted_files(overlay, workload, root)
    for name in list(os.environ):
        if name.startswith((ENV_PREFIX, "LLM_", "OTEL_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        # A path is a file the pod mounts (settings typed `Path`, not `FilePath`, are only
        # opened when the service starts).
        assert not value.startswith("/") or value in files, f"{name}={value}: not mounted"
        monkeypatch.setenv(name, str(files.get(value, value)))
    settings = PROCESSES[_module(workload)].settings
    return settings(_env_file=None)


_BASE_DEPLOYMENTS: Final = (
    "session-commands",
    "agent-orchestration",
    "llm-invocation",
    "tool-invocation",
    "audit",
    "gateway",
)
_CASES: Final = [
    pytest.param(overlay, name, id=f"{overlay}:{name}")
    for overlay in OVERLAYS
    for name in (*(f"Deployment/{d}" for d in _BASE_DEPLOYMENTS), "Job/topics")
]


def _workload(overlay: str, name: str) -> Resource:
    kind, workload_name = name.split("/")
    workload = _named(overlay, kind, workload_name)
    assert workload is not None, f"{overlay}: no {name}"
    return workload


# --- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_checked(overlay: str) -> None:
    names = {f"{w['kind']}/{w['metadata']['name']}" for w in _workloads(overlay)}
    assert names == {f"Deployment/{d}" for d in _BASE_DEPLOYMENTS} | {"Job/topics"}


@pytest.mark.parametrize(("overlay", "name"), _CASES)
def test_the_container_runs_a_module_of_this_project(overlay: str, name: str) -> None:
    module = _module(_workload(overlay, name))
    assert module in PROCESSES, f"{name} runs {module!r}"
    path = ROOT / Path(*module.split("."))
    assert (path / "__main__.py").is_file() or path.with_suffix(".py").is_file()


def _mcp_servers(overlay: str, workload: Resource) -> McpServers:
    """The MCP servers file tool-invocation is given (none elsewhere)."""
    env = environment(overlay, workload)
    path = env.get(f"{ENV_PREFIX}MCP_SERVERS_FILE")
    if _module(workload) != "services.tool_invocation" or path is None:
        return McpServers()
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in _container(workload).get("volumeMounts", []):
        directory, _, key = path.rpartition("/")
        config_map = volumes[mount["name"]].get("configMap")
        if mount["mountPath"].rstrip("/") == directory and config_map is not None:
            source = _named(overlay, "ConfigMap", config_map["name"])
            assert source is not None, f"{overlay}: no ConfigMap {config_map['name']}"
            return McpServers.parse(_data(source)[key], source=path)
    raise AssertionError(f"{overlay}: {path} is not in a mounted ConfigMap")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_mcp_servers_file_loads(overlay: str) -> None:
    _mcp_servers(overlay, _workload(overlay, "Deployment/tool-invocation"))


@pytest.mark.parametrize(("overlay", "name"), _CASES)
def test_every_variable_is_read_by_that_process(overlay: str, name: str) -> None:
    workload = _workload(overlay, name)
    read = env_names(PROCESSES[_module(workload)].settings)
    read |= _trigger_env_names(overlay, workload["metadata"]["name"])
    # An MCP server's secret header comes from a variable the servers file names.
    read |= {
        variable
        for server in _mcp_servers(overlay, workload).servers.values()
        for variable in server.headers_env.values()
    }
    unread = {
        variable
        for variable in environment(overlay, workload)
        if variable not in read and not variable.startswith("OTEL_")
    }
    assert not unread, f"{overlay}: {name} gets variables it never reads: {sorted(unread)}"


@pytest.mark.parametrize(("overlay", "name"), _CASES)
def test_the_process_accepts_the_values(
    overlay: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_settings(overlay, _workload(overlay, name), tmp_path, monkeypatch)


def _port_number(container: Resource, port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"{container['name']}: no container port named {port!r}"
    return int(numbers[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("deployment", _BASE_DEPLOYMENTS)
def test_probes_ports_and_scraping_name_what_the_process_serves(
    overlay: str, deployment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = _workload(overlay, f"Deployment/{deployment}")
    container = _container(workload)
    settings = build_settings(overlay, workload, tmp_path, monkeypatch)
    served = getattr(settings, PROCESSES[_module(workload)].port_field)
    assert served in {p["containerPort"] for p in container["ports"]}
    paths = {
        "startupProbe": "/health/live",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    for probe, path in paths.items():
        get = container[probe]["httpGet"]
        assert (get["path"], _port_number(container, get["port"])) == (path, served), probe
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(served)
    assert annotations["prometheus.io/path"] == "/metrics"
    monitor = _named(overlay, "PodMonitor", "agent-runtime")
    if monitor is not None:
        port_names = {p.get("name") for p in container["ports"] if p["containerPort"] == served}
        endpoints = [
            e for e in monitor["spec"]["podMetricsEndpoints"] if e.get("port") in port_names
        ]
        assert [e["path"] for e in endpoints] == ["/metrics"], f"PodMonitor misses {deployment}"
    for service in _of_kind(overlay, "Service"):
        if service["spec"]["selector"] == workload["spec"]["selector"]["matchLabels"]:
            for port in service["spec"]["ports"]:
                assert _port_number(container, port["targetPort"]) == served


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_readiness_probe_waits_for_the_services_own_check_timeout(overlay: str) -> None:
    # /health/ready gives each check (MongoDB ping, broker) up to READINESS_CHECK_TIMEOUT_S and
    # answers 200 within it: at the kubelet's default timeout (1 s) a slow but healthy
    # dependency failed the probe (the gateway answered 200 in 1.4 s with MongoDB 1.4 s away)
    # and took every pod out of its Service at once.
    for workload in _of_kind(overlay, "Deployment"):
        probe = _container(workload)["readinessProbe"]
        name = workload["metadata"]["name"]
        assert probe.get("timeoutSeconds", 1) > READINESS_CHECK_TIMEOUT_S, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_pod_behind_a_service_leaves_it_before_it_stops_listening(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM closes the listener at once, while endpoint removal reaches kube-proxy and the
    # ingress only later: a preStop pause covers that, within the grace period.
    for service in _of_kind(overlay, "Service"):
        selector = service["spec"]["selector"]
        for workload in _of_kind(overlay, "Deployment"):
            if workload["spec"]["selector"]["matchLabels"] != selector:
                continue
            pod = workload["spec"]["template"]["spec"]
            pause = _container(workload).get("lifecycle", {}).get("preStop", {}).get("sleep")
            name = workload["metadata"]["name"]
            assert pause is not None, f"{name}: no preStop pause before SIGTERM"
            settings = build_settings(overlay, workload, tmp_path / name, monkeypatch)
            assert (
                pause["seconds"] + settings.drain_timeout_s < pod["terminationGracePeriodSeconds"]
            )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_triggers_name_the_group_and_topics_the_service_consumes(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scaled_objects = _of_kind(overlay, "ScaledObject")
    consumers = {
        d["metadata"]["name"]: d
        for d in _of_kind(overlay, "Deployment")
        if PROCESSES[_module(d)].group_field is not None
    }
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled_objects} == set(consumers)
    for scaled in scaled_objects:
        name = scaled["spec"]["scaleTargetRef"]["name"]
        workload = consumers[name]
        process = PROCESSES[_module(workload)]
        assert process.group_field is not None
        settings = build_settings(overlay, workload, tmp_path / name, monkeypatch)
        env = environment(overlay, workload)
        consumed = set(settings.topics.names(process.consumes))
        # The form the Kafka ACLs grant (docs/security.md: `<prefix><service>`).
        assert getattr(settings, process.group_field) == f"{settings.topic_prefix}{name}"
        covered: set[str] = set()
        for trigger in scaled["spec"]["triggers"]:
            meta = trigger["metadata"]
            assert env[meta["bootstrapServersFromEnv"]] == settings.kafka_bootstrap_servers
            # A new group's backlog counted as the service will read it; in-flight records
            # (uncommitted) count as lag, so one pod's capacity is one pod's worth of lag.
            assert meta["offsetResetPolicy"] == settings.auto_offset_reset
            assert int(meta["lagThreshold"]) == settings.max_in_flight, name
            assert env[meta["consumerGroupFromEnv"]] == getattr(settings, process.group_field), (
                f"{name}: KEDA reads the lag of another group than the service joins"
            )
            if "topicFromEnv" in meta:
                topic = env[meta["topicFromEnv"]]
                assert topic in consumed, f"{name}: its group does not consume {topic}"
                covered.add(topic)
            else:  # KEDA: every topic the group has offsets for
                covered |= consumed
        assert covered == consumed, f"{name}: no trigger for {sorted(consumed - covered)}"
        assert scaled["spec"]["maxReplicaCount"] == DEFAULT_PARTITIONS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_a_group_in_one_pod_at_a_time(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KEDA's cooldownPeriod applies only to scaling to zero; from N to minReplicaCount its HPA
    # scales down with Kubernetes' default (100 % every 15 s). A static member that leaves keeps
    # its partitions for the session timeout after its drain: one pod per period, the period
    # longer than both, moves each leaving pod's partitions before the next one leaves.
    for scaled in _of_kind(overlay, "ScaledObject"):
        name = scaled["spec"]["scaleTargetRef"]["name"]
        settings = build_settings(
            overlay, _workload(overlay, f"Deployment/{name}"), tmp_path / name, monkeypatch
        )
        hpa = scaled["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {})
        policies = hpa.get("behavior", {}).get("scaleDown", {}).get("policies", [])
        assert policies, f"{name}: the HPA's default scale-down removes every idle pod at once"
        for policy in policies:
            assert (policy["type"], policy["value"]) == ("Pods", 1), f"{name}: {policy}"
            leaving_s = settings.drain_timeout_s + settings.session_timeout_ms / 1000
            assert policy["periodSeconds"] > leaving_s, f"{name}: {policy}"


@pytest.mark.parametrize(
    ("overlay", "replicas", "min_insync"), [("local", 1, 1), ("production", 3, 2)]
)
def test_the_topics_job_provisions_with_the_overlay_durability(
    overlay: str, replicas: int, min_insync: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _workload(overlay, "Job/topics")
    settings = build_settings(overlay, job, tmp_path, monkeypatch)
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (
        replicas,
        min_insync,
    )
    for deployment in _of_kind(overlay, "Deployment"):
        # Names derive from the prefix: every process must see the Job's.
        assert environment(overlay, deployment)[f"{ENV_PREFIX}TOPIC_PREFIX"] == (
            settings.topic_prefix
        )


def test_every_process_logs_in_over_sasl_ssl_as_its_own_principal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roles = tomllib.loads((ROOT / "deploy" / "kafka" / "acls.toml").read_text())["roles"]
    principals = {p for members in roles.values() for p in members}
    for workload in _workloads("production"):
        name = workload["metadata"]["name"]
        settings = build_settings("production", workload, tmp_path / name, monkeypatch)
        assert settings.kafka_security_protocol == "SASL_SSL", name
        expected = "admin" if workload["kind"] == "Job" else name
        assert settings.kafka_sasl_username == expected
        if workload["kind"] == "Deployment":
            assert f"User:{name}" in principals, f"acls.toml grants {name} nothing"
    # KEDA reads the lag over the same listener: every trigger authenticates.
    authentications = {
        a["metadata"]["name"] for a in _of_kind("production", "TriggerAuthentication")
    }
    for scaled in _of_kind("production", "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            reference = trigger.get("authenticationRef", {}).get("name")
            assert reference in authentications, f"{scaled['metadata']['name']}: {trigger}"


def test_the_security_doc_names_settings_that_exist() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(rf"`({ENV_PREFIX}KAFKA_[A-Z_]+)`", text))
    assert named, "docs/security.md lists no Kafka client setting"
    assert named <= env_names(RuntimeSettings)


# --- compose ------------------------------------------------------------------------------


def _compose_services() -> dict[str, Resource]:
    document = yaml.safe_load((ROOT / "compose.kafka.yml").read_text())
    return {
        name: service
        for name, service in document["services"].items()
        if str(service.get("image", "")).startswith("agent-runtime")
    }


def _interpolated(value: object) -> str:
    # Compose's `${VAR:-default}` with VAR unset.
    return re.sub(r"\$\{\w+:-(.*)\}$", r"\1", str(value))


def test_compose_runs_every_process() -> None:
    modules = {s["command"][0] for s in _compose_services().values()}
    assert modules == set(PROCESSES)


@pytest.mark.parametrize("service", sorted(_compose_services()))
def test_compose_gives_each_process_settings_it_reads_and_accepts(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _compose_services()[service]
    process = PROCESSES[spec["command"][0]]
    env = {k: _interpolated(v) for k, v in spec["environment"].items()}
    unread = set(env) - env_names(process.settings)
    assert not unread, f"compose {service} gets variables it never reads: {sorted(unread)}"
    for name in list(os.environ):
        if name.startswith((ENV_PREFIX, "LLM_", "OTEL_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = process.settings(_env_file=None)
    published = {str(p).rsplit(":", 1)[-1] for p in spec.get("ports", [])}
    if published:
        assert published == {str(getattr(settings, process.port_field))}
