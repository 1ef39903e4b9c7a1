"""The console's page over HTTP: GET serves it, HEAD its headers alone (was 405)."""

import pytest

from tests.integration.gateway.in_process import in_process_gateway

pytestmark = pytest.mark.integration


async def test_the_console_page_answers_get_and_head(mongodb_uri: str) -> None:
    async with in_process_gateway(mongodb_uri=mongodb_uri) as gw:
        page = await gw.http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert b"console.js" in page.content

        head = await gw.http.head("/")
        assert head.status_code == 200, head.text
        assert head.headers["content-type"] == page.headers["content-type"]
        assert head.headers["content-length"] == str(len(page.content))
        assert head.content == b""
