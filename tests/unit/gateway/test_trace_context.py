"""The caller's trace on the command: the child of the gateway's server span when spans are
exported, the caller's own `traceparent` unchanged when nothing is.

Each case runs in a process of its own: the first tracer provider a process configures is its
global one for good (and an exporting one instruments HTTP and MongoDB clients)."""

import subprocess
import sys
from pathlib import Path

import pytest

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

_SCRIPT = """
import asyncio, sys
import httpx
from services.gateway.api_keys import hash_api_key, new_api_key
from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings

async def main() -> None:
    key = new_api_key()
    settings = GatewaySettings(
        gateway_api_keys={hash_api_key(key): "acme"}, console_telemetry=sys.argv[1] == "export"
    )
    app = build_app(settings)
    exchange = app.state.gateway.exchange
    exchange._feed._ready.set()  # no broker here: the command is caught at the publisher
    seen = {}

    async def publish(command, **options):
        seen.update(options)

    exchange._publisher.publish = publish
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.post(
            "/v1/sessions/s-1/messages",
            json={"content": "hello"},
            headers={
                "Authorization": f"Bearer {key}",
                "Prefer": "respond-async",
                "traceparent": sys.argv[2],
                "tracestate": sys.argv[3],
            },
        )
    assert response.status_code == 202, response.text
    sys.stderr.write(f"TRACEPARENT={seen['traceparent']}\\n")
    sys.stderr.write(f"TRACESTATE={seen.get('tracestate')}\\n")

asyncio.run(main())
"""


def _command_trace(mode: str, tracestate: str = "vendor=1") -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, CALLER, tracestate],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [x for x in done.stderr.splitlines() if x.startswith("TRACEPARENT=")]
    [state] = [x for x in done.stderr.splitlines() if x.startswith("TRACESTATE=")]
    return line.removeprefix("TRACEPARENT="), state.removeprefix("TRACESTATE=")


@pytest.mark.parametrize("mode", ["export", "none"])
def test_the_command_continues_the_callers_trace(mode: str) -> None:
    traceparent, tracestate = _command_trace(mode)
    assert tracestate == "vendor=1"
    version, trace_id, span_id, flags = traceparent.split("-")
    _, caller_trace, caller_span, caller_flags = CALLER.split("-")
    assert (version, trace_id, flags) == ("00", caller_trace, caller_flags)
    if mode == "export":
        assert span_id != caller_span  # the gateway's server span, a child of the caller's
    else:
        assert span_id == caller_span  # no span of its own: passed on unchanged


@pytest.mark.parametrize("mode", ["export", "none"])
def test_a_tracestate_opentelemetry_cannot_parse_is_not_carried_on(mode: str) -> None:
    # Was copied onto the command as sent; its consumers' trace extraction then warned while
    # making the record's span, which recursed (the command dead-lettered, the caller's
    # message lost behind a 202).
    _, tracestate = _command_trace(mode, tracestate="a=" + "b" * 300)
    assert tracestate == "None"
    # One member it cannot parse (a key with an upper-case letter) drops the whole header, the
    # valid members too, as contracts/README.md says (W3C Trace Context allows either).
    _, tracestate = _command_trace(mode, tracestate="ok=1,Bad=2")
    assert tracestate == "None"
