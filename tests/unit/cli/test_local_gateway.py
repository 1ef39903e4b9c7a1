"""`make run` / `up`: the gateway joins the four services with a generated, persisted key."""

import json
import stat
from pathlib import Path

import pytest

from services.cli.errors import UsageProblem
from services.cli.local_gateway import LOCAL_SERVICES, gateway_env, local_api_key, local_ports
from services.gateway.api_keys import ApiKeyRegistry

pytestmark = pytest.mark.unit


def test_the_local_key_is_generated_once_private_and_maps_to_the_cli_tenant(
    tmp_path: Path,
) -> None:
    key = local_api_key(tmp_path)
    assert local_api_key(tmp_path) == key
    assert stat.S_IMODE((tmp_path / "gateway-api-key").stat().st_mode) == 0o600
    hashed = json.loads(gateway_env(tmp_path, "local")["AGENT_RUNTIME_GATEWAY_API_KEYS"] or "")
    assert key not in json.dumps(hashed)  # only the hash leaves the file
    found = ApiKeyRegistry(hashed).authenticate(key)
    assert found is not None
    assert found.tenant_id == "local"


def test_five_local_processes_on_distinct_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENT_RUNTIME_GATEWAY_PORT", raising=False)
    monkeypatch.delenv("AGENT_RUNTIME_HEALTH_PORT", raising=False)
    ports = local_ports()
    assert [s.name for s in LOCAL_SERVICES][-1] == "gateway"
    assert ports["gateway"] == 8000
    assert len(set(ports.values())) == len(LOCAL_SERVICES) == 6
    assert sorted(ports.values()) == [8000, 8081, 8082, 8083, 8084, 8085]


def test_the_health_ports_follow_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second local stack (another prefix) moves its services off the first one's ports
    with AGENT_RUNTIME_HEALTH_PORT: `up` handed them 8081-8085 whatever the setting."""
    monkeypatch.setenv("AGENT_RUNTIME_HEALTH_PORT", "18180")
    monkeypatch.setenv("AGENT_RUNTIME_GATEWAY_PORT", "18186")
    ports = local_ports()
    assert sorted(ports.values()) == list(range(18181, 18187))
    monkeypatch.setenv("AGENT_RUNTIME_HEALTH_PORT", "0")  # 0: free ports, as for a service
    assert len(set(local_ports().values())) == 6
    monkeypatch.setenv("AGENT_RUNTIME_HEALTH_PORT", "65533")
    with pytest.raises(UsageProblem, match="AGENT_RUNTIME_HEALTH_PORT"):
        local_ports()


def test_the_gateway_port_may_come_from_dotenv_as_every_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: move the gateway off a model server's 8000 with AGENT_RUNTIME_GATEWAY_PORT, and
    settings may live in `.env`. The stack hands the gateway its port explicitly, so the stack
    must read `.env` too, or it moves the gateway back onto 8000 and probes the model server."""
    monkeypatch.delenv("AGENT_RUNTIME_GATEWAY_PORT", raising=False)
    (tmp_path / ".env").write_text("AGENT_RUNTIME_GATEWAY_PORT=8080\n")
    monkeypatch.chdir(tmp_path)
    assert local_ports()["gateway"] == 8080
