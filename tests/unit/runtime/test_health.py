import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.runtime.health import HealthServer

pytestmark = pytest.mark.unit


async def get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_live_ready_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("demo_total", "demo", registry=registry).inc()
    server = HealthServer(registry, "127.0.0.1", 0)
    mongo_up = {"ok": False}

    async def mongo() -> bool:
        return mongo_up["ok"]

    async def broken() -> bool:
        raise ConnectionError("no route")

    server.add_check("mongo", mongo)
    await server.start()
    try:
        assert await get(server.port, "/health/live") == (200, b'{"status":"live"}')
        status, body = await get(server.port, "/health/ready")
        assert status == 503
        assert json.loads(body)["checks"] == {"mongo": False}
        mongo_up["ok"] = True
        assert (await get(server.port, "/health/ready"))[0] == 200
        server.add_check("broken", broken)
        status, body = await get(server.port, "/health/ready")
        assert (status, json.loads(body)["checks"]["broken"]) == (503, False)
        status, body = await get(server.port, "/metrics")
        assert status == 200
        assert b"demo_total 1.0" in body
        assert b"process_cpu_seconds_total" in body or b"python_info" in body  # default registry
        assert (await get(server.port, "/nope"))[0] == 404
    finally:
        await server.stop()


async def test_the_first_ready_answer_runs_its_callbacks_once_before_it_is_returned() -> None:
    server = HealthServer(CollectorRegistry(), "127.0.0.1", 0)
    up = {"ok": False}
    announced: list[str] = []

    async def dependency() -> bool:
        return up["ok"]

    server.add_check("dependency", dependency)
    server.on_first_ready(lambda: announced.append("ready"))
    await server.start()
    try:
        assert (await get(server.port, "/health/ready"))[0] == 503
        assert announced == []
        up["ok"] = True
        assert (await get(server.port, "/health/ready"))[0] == 200
        assert announced == ["ready"]
        await server.readiness()
        assert (await get(server.port, "/health/ready"))[0] == 200
        assert announced == ["ready"]
    finally:
        await server.stop()
