"""`agent-runtime up / down / run`: the services and the HTTP gateway on this machine."""

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from services.cli.errors import CliError
from services.cli.local_gateway import (
    LOCAL_SERVICES,
    gateway_env,
    gateway_port,
    local_api_key,
    local_ports,
)
from services.cli.local_mcp import local_mcp_env
from services.cli.settings import cli_settings
from services.cli.stack import ServiceStack


def _stack(run_dir: Path, env: dict[str, str | None] | None = None) -> ServiceStack:
    settings = cli_settings()
    return ServiceStack(
        run_dir,
        env={**gateway_env(run_dir, settings.tenant_id), **local_mcp_env(run_dir), **(env or {})},
        services=LOCAL_SERVICES,
        ports=local_ports(),
    )


def _print_gateway(run_dir: Path, console: Console) -> None:
    url = f"http://127.0.0.1:{gateway_port()}"
    console.print(
        f"[green]●[/] HTTP API {url}/v1 (docs {url}/docs) — local API key "
        f"[bold]{local_api_key(run_dir)}[/] (tenant {cli_settings().tenant_id}; "
        f"kept in {run_dir / 'gateway-api-key'})"
    )


async def up(run_dir: Path, timeout_s: float, console: Console) -> ServiceStack:
    stack = _stack(run_dir)
    stack.start_all()
    with console.status("waiting for the services to be ready…"):
        try:
            await stack.wait_ready(timeout_s)
        except (TimeoutError, RuntimeError) as exc:
            raise CliError(str(exc)) from None
    for name, pid in stack.status().items():
        console.print(
            f"[green]●[/] {name} pid {pid}, health http://127.0.0.1:{stack.ports[name]}"
            f"/health/ready, log {stack.log_path(name)}"
        )
    _print_gateway(run_dir, console)
    return stack


def down(run_dir: Path, console: Console) -> None:
    stack = _stack(run_dir)
    running = {name: pid for name, pid in stack.status().items() if pid is not None}
    with console.status("stopping (the services drain in-flight work and commit)…"):
        stack.stop_all()
    for name, pid in running.items():
        console.print(f"[dim]○[/] {name} (pid {pid}) stopped")
    if not running:
        console.print("no services of ours were running")


async def _echo_logs(stack: ServiceStack, console: Console, stop: asyncio.Event) -> None:
    """Print new log lines of every service, prefixed and coloured, until `stop` is set."""
    colours = {spec.name: spec.colour for spec in LOCAL_SERVICES}
    files = {name: stack.log_path(name).open("r", errors="replace") for name in stack.services}
    width = max(len(name) for name in files)

    def echo_new_lines() -> bool:
        echoed = False
        for name, handle in files.items():
            for line in handle.readlines():
                echoed = True
                console.print(
                    f"[{colours[name]}]{name:<{width}} │[/] {escape(line.rstrip())}",
                    markup=True,
                    highlight=False,
                )
        return echoed

    try:
        for handle in files.values():
            handle.seek(0, 2)
        while not stop.is_set():
            if not echo_new_lines():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
        # A service writes its ready line before its probe answers ready: echo the lines
        # written since the last pass, so the last service's ready line is not lost.
        echo_new_lines()
    finally:
        for handle in files.values():
            handle.close()


def run(run_dir: Path, console: Console) -> None:
    from services.cli.chat import run_chat

    # Readable lines in the terminal; an explicit AGENT_RUNTIME_LOG_FORMAT still wins.
    stack = _stack(
        run_dir,
        env={"AGENT_RUNTIME_LOG_FORMAT": os.environ.get("AGENT_RUNTIME_LOG_FORMAT", "console")},
    )

    async def start_then_chat() -> None:
        stop = asyncio.Event()
        for name in stack.services:
            stack.log_path(name).touch()
        echo = asyncio.create_task(_echo_logs(stack, console, stop))
        stack.start_all()
        try:
            await stack.wait_ready(120.0)
        finally:
            stop.set()
            await echo
        console.rule("services ready — logs continue in " + str(run_dir / "logs"))
        _print_gateway(run_dir, console)
        await run_chat(cli_settings(), None, "Chat")

    try:
        asyncio.run(start_then_chat())
    except KeyboardInterrupt:
        console.print()
    except (TimeoutError, RuntimeError) as exc:
        raise CliError(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the drain
        down(run_dir, console)
        console.print("[dim]infrastructure left running; `make infra-down` stops it[/]")
