"""The API key cookie of live streams (EventSource cannot send Authorization): read for a GET
of `…/events` only, and percent-decoded, as the console writes it with encodeURIComponent."""

from urllib.parse import quote

import pytest
from starlette.datastructures import Headers
from starlette.types import Scope

from services.gateway.edge import STREAM_KEY_COOKIE, stream_authorization


def scope(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path}


@pytest.mark.parametrize("key", ["ar_abc-DEF_123", "k+y/z=", "50%25;off"])
def test_the_console_cookie_gives_the_key_it_encoded(key: str) -> None:
    # encodeURIComponent escapes what quote(safe="") escapes, but for !'()*~
    cookie = f"other=1; {STREAM_KEY_COOKIE}={quote(key, safe='')}"
    headers = Headers({"cookie": cookie})
    assert stream_authorization(scope("GET", "/v1/sessions/s-1/events"), headers) == (
        f"Bearer {key}"
    )


def test_the_cookie_is_read_for_the_stream_get_only_and_never_over_a_header() -> None:
    cookie = Headers({"cookie": f"{STREAM_KEY_COOKIE}=ar_key"})
    assert stream_authorization(scope("GET", "/v1/sessions/s-1"), cookie) == ""
    assert stream_authorization(scope("POST", "/v1/sessions/s-1/events"), cookie) == ""
    both = Headers({"cookie": f"{STREAM_KEY_COOKIE}=ar_key", "authorization": "Bearer ar_other"})
    assert stream_authorization(scope("GET", "/v1/sessions/s-1/events"), both) == (
        "Bearer ar_other"
    )
    assert stream_authorization(scope("GET", "/v1/sessions/s-1/events"), Headers({})) == ""
