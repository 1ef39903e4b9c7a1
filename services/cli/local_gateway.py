"""The gateway of a local stack (`make run` / `make up`): its port and a generated API key.

The key is created once, kept in `<run_dir>/gateway-api-key` (mode 0600) and printed, so a
developer can `curl` the local API at once; only its hash is handed to the gateway. It names
the CLI's tenant (`AGENT_RUNTIME_TENANT_ID`, default `local`), so the chat and curl see the
same sessions.
"""

import contextlib
import json
import socket
from pathlib import Path
from typing import Final

from services.cli.errors import UsageProblem
from services.cli.settings import cli_settings
from services.cli.stack import GATEWAY, SERVICES, ServiceSpec
from services.gateway.api_keys import hash_api_key, new_api_key

LOCAL_SERVICES: tuple[ServiceSpec, ...] = (*SERVICES, GATEWAY)
_MAX_PORT: Final = 65_535


def gateway_port() -> int:
    """`AGENT_RUNTIME_GATEWAY_PORT` from the environment or `.env`, as the gateway reads it: the
    stack hands the gateway this port explicitly, so reading the environment alone moved a
    gateway configured in `.env` back onto 8000 (the port README's model server may hold)."""
    return cli_settings().gateway_port


def local_ports() -> dict[str, int]:
    """The gateway on its port; the five consumers' health endpoints on the five ports after
    `AGENT_RUNTIME_HEALTH_PORT` (8081-8085 by default; 0: free ports). The stack hands each
    service its port, so a fixed 8081 ignored the setting: a second stack on the machine (a
    prefix of its own) could not move off the first one's ports."""
    settings = cli_settings()
    if settings.health_port == 0:
        health = _free_ports(len(SERVICES))
    else:
        health = [settings.health_port + 1 + i for i in range(len(SERVICES))]
        if health[-1] > _MAX_PORT:
            raise UsageProblem(
                f"AGENT_RUNTIME_HEALTH_PORT: the local services take the {len(SERVICES)} "
                f"ports after it; at most {_MAX_PORT - len(SERVICES)}"
            )
    ports = {spec.name: port for spec, port in zip(SERVICES, health, strict=True)}
    ports[GATEWAY.name] = gateway_port()
    return ports


def _free_ports(count: int) -> list[int]:
    """Ports free now, distinct (each socket stays bound until all are chosen)."""
    with contextlib.ExitStack() as sockets:
        bound = [sockets.enter_context(socket.socket()) for _ in range(count)]
        for sock in bound:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in bound]


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
