"""The gateway of a local stack (`make run` / `make up`): its port and a generated API key.

The key is created once, kept in `<run_dir>/gateway-api-key` (mode 0600) and printed, so a
developer can `curl` the local API at once; only its hash is handed to the gateway. It names
the CLI's tenant (`AGENT_RUNTIME_TENANT_ID`, default `local`), so the chat and curl see the
same sessions.
"""

import json
from pathlib import Path

from services.cli.settings import cli_settings
from services.cli.stack import GATEWAY, SERVICES, ServiceSpec
from services.gateway.api_keys import hash_api_key, new_api_key

LOCAL_SERVICES: tuple[ServiceSpec, ...] = (*SERVICES, GATEWAY)


def gateway_port() -> int:
    """`AGENT_RUNTIME_GATEWAY_PORT` from the environment or `.env`, as the gateway reads it: the
    stack hands the gateway this port explicitly, so reading the environment alone moved a
    gateway configured in `.env` back onto 8000 (the port README's model server may hold)."""
    return cli_settings().gateway_port


def local_ports(base_health_port: int = 8081) -> dict[str, int]:
    ports = {spec.name: base_health_port + i for i, spec in enumerate(SERVICES)}
    ports[GATEWAY.name] = gateway_port()
    return ports


def local_api_key(run_dir: Path) -> str:
    path = run_dir / "gateway-api-key"
    if path.exists():
        return path.read_text().strip()
    key = new_api_key()
    run_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def gateway_env(run_dir: Path, tenant_id: str) -> dict[str, str | None]:
    """The settings the local gateway gets: the local key's hash, mapped to the CLI's tenant."""
    keys = {hash_api_key(local_api_key(run_dir)): tenant_id}
    return {"AGENT_RUNTIME_GATEWAY_API_KEYS": json.dumps(keys)}
