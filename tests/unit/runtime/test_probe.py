"""The image's HEALTHCHECK command: 0 for a 2xx health answer, 1 otherwise."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.runtime.probe import main

pytestmark = pytest.mark.unit


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_live_process_passes(server_url: str) -> None:
    assert main([f"{server_url}/health/live"]) == 0


def test_an_unhealthy_answer_or_no_answer_fails(server_url: str) -> None:
    assert main([f"{server_url}/health/ready"]) == 1
    assert main(["http://127.0.0.1:1/health/live"]) == 1
