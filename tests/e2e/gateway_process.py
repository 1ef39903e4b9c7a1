"""Start the gateway as its own process beside a `pipeline`, with two tenants' API keys."""

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.cli.stack import GATEWAY, ServiceStack
from services.gateway.api_keys import hash_api_key, new_api_key


@dataclass(frozen=True)
class GatewayProcess:
    stack: ServiceStack
    url: str
    keys: dict[str, str]
    """API key per tenant."""

    def auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_gateway(
    run_dir: Path,
    env: Mapping[str, str | None],
    tenants: tuple[str, ...],
    extra: Mapping[str, str] | None = None,
) -> GatewayProcess:
    keys = {tenant: new_api_key() for tenant in tenants}
    port = free_port()
    stack = ServiceStack(
        run_dir,
        env={
            **env,
            "AGENT_RUNTIME_GATEWAY_HOST": "127.0.0.1",
            "AGENT_RUNTIME_GATEWAY_API_KEYS": json.dumps(
                {hash_api_key(key): tenant for tenant, key in keys.items()}
            ),
            **(extra or {}),
        },
        services=(GATEWAY,),
        ports={GATEWAY.name: port},
    )
    stack.start_all()
    try:
        await stack.wait_ready(timeout_s=60.0)
    except BaseException:
        print(stack.log_path(GATEWAY.name).read_text(errors="replace")[-4000:])
        stack.stop_all(timeout_s=10.0)
        raise
    return GatewayProcess(stack=stack, url=f"http://127.0.0.1:{port}", keys=keys)
