"""A service runs on the event loop its settings name: uvloop by default, asyncio on request."""

import asyncio

import pytest

from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


@pytest.mark.parametrize(("setting", "module"), [("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_run_uses_the_configured_loop(
    monkeypatch: pytest.MonkeyPatch, setting: str, module: str
) -> None:
    runtime = ServiceRuntime(
        "audit",
        RuntimeSettings(topic_prefix="t.", event_loop=setting),
        configure_logs=False,
    )
    seen: list[str] = []

    async def app_run() -> None:
        seen.append(await _loop_module())

    monkeypatch.setattr(runtime.app, "run", app_run)
    runtime.run()
    assert len(seen) == 1
    assert seen[0].split(".")[0] == module


def test_uvloop_is_the_default() -> None:
    assert RuntimeSettings().event_loop == "uvloop"
