"""`python -m services.audit` as the stack runs it: ready, audits, drains and exits on SIGTERM."""

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.integration.audit.harness import audit_events, caught_up, deployment, publish
from tests.support.audit.conversation import conversation

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def ready(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.write(b"GET /health/ready HTTP/1.0\r\nHost: x\r\n\r\n")
    await writer.drain()
    response = await reader.read()
    writer.close()
    return response.startswith(b"HTTP/1.0 200") or response.startswith(b"HTTP/1.1 200")


async def test_the_service_process_audits_and_exits_cleanly_on_sigterm(
    kafka_bootstrap_servers: str, mongodb_uri: str, mongo_database_name: str, unique_suffix: str
) -> None:
    async with deployment(
        kafka_bootstrap_servers, mongodb_uri, mongo_database_name, unique_suffix
    ) as env:
        group = f"audit-proc-{unique_suffix}"
        port = free_port()
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "AGENT_RUNTIME_KAFKA_BOOTSTRAP_SERVERS": env.bootstrap,
            "AGENT_RUNTIME_MONGODB_URI": env.mongodb_uri,
            "AGENT_RUNTIME_MONGODB_DATABASE": env.database,
            "AGENT_RUNTIME_TOPIC_PREFIX": env.catalogue.prefix,
            "AGENT_RUNTIME_AUDIT_CONSUMER_GROUP": group,
            "AGENT_RUNTIME_HEALTH_PORT": str(port),
            "AGENT_RUNTIME_COMMIT_INTERVAL_S": "0.2",
            "AGENT_RUNTIME_REDACTION_MODE": "truncated",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.audit",
            cwd=REPO_ROOT,
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        # Drained all along, so a chatty service never blocks on a full pipe.
        stderr = asyncio.create_task(process.stderr.read())
        try:
            deadline = asyncio.get_running_loop().time() + 60
            while not await ready(port):
                assert process.returncode is None, "the audit service exited during start-up"
                assert asyncio.get_running_loop().time() < deadline, "never became ready"
                await asyncio.sleep(0.2)
            trail = conversation("proc-1")[:4]
            await publish(env.bootstrap, env.catalogue, trail)
            await caught_up(env, group)
            events = await audit_events(env)
            assert sorted(e.record.fact_id for e in events) == sorted(f.message.id for f in trail)
            content = next(e.record.content for e in events if e.record.content is not None)
            assert content.mode.value == "truncated"  # settings come from the environment

            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        logs = (await stderr).decode(errors="replace")
        assert code == 0, logs[-3000:]
        structured = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert any(entry.get("service") == "audit" for entry in structured)
