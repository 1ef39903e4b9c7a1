"""1,000+ malformed requests: every one gets a 4xx problem, none a 5xx.

The gateway runs in this process against the real broker (its own topics, so the event feed
is positioned and a write that slipped through would really be published) and the real
Mongo-compatible server. Each example is malformed on purpose in one way: not JSON, wrong
types, unknown fields, over the contract limits or the body size limit, odd unicode, ids that
cannot exist, bad query parameters, missing or wrong credentials.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.limits import MAX_CONTENT_LENGTH, MAX_TITLE_LENGTH
from contracts.topics import TopicCatalogue, TopicName
from services.admin.topics import delete_topics, ensure_topics
from tests.integration.gateway.in_process import InProcessGateway, in_process_gateway

pytestmark = pytest.mark.integration

EXAMPLES = 1_100
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Attempt:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    params: dict[str, str]


@pytest.fixture(scope="module")
async def fuzz_gateway(
    kafka_bootstrap_servers: str, mongodb_uri: str
) -> AsyncIterator[InProcessGateway]:
    prefix = f"fuzz-{uuid.uuid4().hex[:8]}."
    catalogue = TopicCatalogue(prefix=prefix, partitions=2)
    specs = [catalogue.spec(TopicName.COMMANDS), catalogue.spec(TopicName.SESSION_EVENTS)]
    await ensure_topics(kafka_bootstrap_servers, specs)
    try:
        async with in_process_gateway(
            kafka_bootstrap_servers=kafka_bootstrap_servers,
            mongodb_uri=mongodb_uri,
            mongodb_database=f"test_fuzz_{uuid.uuid4().hex[:8]}",
            topic_prefix=prefix,
            gateway_rate_limit_burst=100_000,
            gateway_decision_timeout_s=0.2,
            gateway_max_body_bytes=MAX_BODY,
        ) as gateway:
            for _ in range(100):  # the event feed positions itself in the background
                if (await gateway.http.get("/health/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            yield gateway
    finally:
        await delete_topics(kafka_bootstrap_servers, [s.name for s in specs])


# --- what goes wrong ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
not_a_string = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)
valid_session = st.just("s-fuzz-1")
odd_ids = st.text(min_size=1, max_size=40).filter(lambda s: s not in (".", "..") and "/" not in s)

WRITES: dict[str, str] = {
    "create": "/v1/sessions",
    "message": "/v1/sessions/{id}/messages",
    "update": "/v1/sessions/{id}",
    "switch": "/v1/sessions/{id}/agent",
}
METHODS = {"create": "POST", "message": "POST", "update": "PATCH", "switch": "POST"}


@st.composite
def bad_json(draw: st.DrawFn) -> bytes:
    raw = draw(
        st.binary(min_size=1, max_size=200)
        | st.text(min_size=1, max_size=200).map(str.encode)
        | st.sampled_from([b"{", b'{"content": }', b"[1,", b"\xff\xfe", b"{'a': 1}", b"NaN"])
    )
    try:
        json.loads(raw)
    except ValueError:
        return raw
    return b"{" + raw  # still valid JSON by chance: make it not


@st.composite
def wrong_fields(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    if kind == "create":
        field = draw(
            st.sampled_from(["title", "system_prompt", "metadata", "initial_agent", "session_id"])
        )
        value: object = (
            draw(not_a_string) if field != "metadata" else draw(st.integers() | st.text())
        )
        if field == "system_prompt" and value is None:
            value = 0  # null is no system prompt, as in the original's CreateSessionRequest
        if field in ("initial_agent", "session_id"):
            value = draw(st.sampled_from(["", "no such agent", "a b", "é/x", 5]))
        return {field: value}
    if kind == "message":
        return draw(
            st.sampled_from([{}, {"content": ""}])
            | not_a_string.map(lambda v: {"content": v})
            | st.builds(lambda v: {"content": "hi", "unexpected": v}, json_values)
            | st.sampled_from([{"content": "hi", "message_id": "bad id"}])
        )
    if kind == "update":
        return draw(
            st.sampled_from([{}, {"title": None}])
            | not_a_string.filter(lambda v: v is not None).map(lambda v: {"title": v})
        )
    agents: list[dict[str, Any]] = [
        {},
        {"agent": "root"},
        {"agent": ""},
        {"agent": "coder", "x": 1},
    ]
    return draw(st.sampled_from(agents) | not_a_string.map(lambda v: {"agent": v}))


@st.composite
def oversized(draw: st.DrawFn, kind: str) -> bytes:
    if draw(st.booleans()):
        return b'{"content": "' + b"x" * (MAX_BODY + 1) + b'"}'  # over the body limit: 413
    if kind == "message":
        return json.dumps({"content": "é" * (MAX_CONTENT_LENGTH + 1)}).encode()
    return json.dumps({"title": "t" * (MAX_TITLE_LENGTH + 1), "agent": "x" * 300}).encode()


@st.composite
def unicode_edge(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(['"\\ud800"', '"\\udfff x"', '"a\\u0000"']))
    return f'{{"content": {text}, "title": {text}, "agent": {text}, "bogus": 1}}'.encode()


@st.composite
def attempts(draw: st.DrawFn, key: str) -> Attempt:
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    case = draw(st.sampled_from(["json", "fields", "size", "unicode", "id", "query", "auth"]))
    kind = draw(st.sampled_from(sorted(WRITES)))
    path = WRITES[kind].format(id=draw(valid_session))
    method = METHODS[kind]
    if case == "json":
        return Attempt(method, path, auth, draw(bad_json()), {})
    if case == "fields":
        body = json.dumps(draw(wrong_fields(kind))).encode()
        return Attempt(method, path, auth, body, {})
    if case == "size":
        return Attempt(method, path, auth, draw(oversized(kind)), {})
    if case == "unicode":
        return Attempt(method, path, auth, draw(unicode_edge()), {})
    if case == "id":
        template = draw(
            st.sampled_from(
                [
                    "/v1/sessions/{id}",
                    "/v1/sessions/{id}/messages",
                    "/v1/sessions/{id}/agent",
                    "/v1/sessions/{id}/close",
                    "/v1/sessions/{id}/reopen",
                ]
            )
        )
        odd = draw(odd_ids.filter(lambda s: not s.isascii() or not s.replace("-", "").isalnum()))
        method = draw(st.sampled_from(["GET", "POST"]))
        path = template.replace("{id}", quote(odd, safe=""))  # the server decodes it again
        return Attempt(method, path, auth, b'{"content": "hi"}', {})
    if case == "query":
        name, value = draw(
            st.sampled_from(
                [
                    ("limit", "0"),
                    ("limit", "abc"),
                    ("limit", "100000"),
                    ("cursor", "-1"),
                    ("order", "sideways"),
                    ("page", "0"),
                    ("page_size", "-5"),
                    ("status", "gone"),
                    ("wait", "-1"),
                    ("wait", "soon"),
                ]
            )
        )
        target = (
            "/v1/sessions"
            if name in ("page", "page_size", "status")
            else ("/v1/sessions/s-fuzz-1/messages")
        )
        method = "POST" if name == "wait" else "GET"
        content = b'{"content": ""}' if method == "POST" else None
        return Attempt(method, target, auth, content, {name: value})
    headers = draw(
        st.sampled_from(
            [
                {},
                {"Authorization": "Bearer"},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Token {key}"},
                {"Authorization": f"Bearer {key}x"},
            ]
        )
    )
    return Attempt(method, path, {**headers, "Content-Type": "application/json"}, b"{}", {})


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_malformed_requests_get_a_4xx_problem_never_a_5xx(
    fuzz_gateway: InProcessGateway, data: st.DataObject
) -> None:
    attempt = data.draw(attempts(fuzz_gateway.key))
    response = await fuzz_gateway.http.request(
        attempt.method,
        attempt.path,
        headers=attempt.headers,
        content=attempt.body,
        params=attempt.params,
    )
    assert 400 <= response.status_code < 500, (attempt, response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json", attempt
    assert response.json()["status"] == response.status_code


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/sessions", b'{"initial_agent": "ask", "metadata": {"k": "\\ud800"}}'),
        ("POST", "/v1/sessions", b'{"initial_agent": "ask", "metadata": {"\\udfff": 1}}'),
        ("PATCH", "/v1/sessions/s-fuzz-1", b'{"metadata": {"k": "x\\ud83d"}}'),
        (
            "POST",
            "/v1/sessions/s-fuzz-1/tool-calls/call-1/result",
            b'{"content": "ok", "structured": {"a": "\\ud800"}}',
        ),
    ],
)
async def test_a_lone_surrogate_in_an_otherwise_valid_body_is_422_not_a_500(
    fuzz_gateway: InProcessGateway, method: str, path: str, body: bytes
) -> None:
    """`json.loads` turns `"\\ud800"` into a Python string that JSON bytes cannot carry: a
    free-text field holding one (metadata, a structured tool result) made the command
    unserialisable at publish time, a 500 (or, in a metadata key, silently replaced text)."""
    response = await fuzz_gateway.http.request(
        method,
        path,
        content=body,
        headers={
            "Authorization": f"Bearer {fuzz_gateway.key}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
