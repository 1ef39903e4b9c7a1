"""The edge of every request, as one ASGI middleware: request id, size limit, API key, rate
limit, metrics.

Order matters and is the same for every route: a request id first (every answer carries it),
then the body size limit, then authentication and the rate limit for `/v1/*` (before the body
is parsed, so an anonymous or throttled client costs no parsing), then the route. When spans
are exported, the server span around all of it is FastAPI's own (native OpenTelemetry,
`telemetry=` in app.py): its parent is the caller's `traceparent`, so the command published
inside continues that trace. When they are not, no span is made and this middleware makes the
caller's trace context (`traceparent`, `tracestate`, `baggage`) the request's, so the command
carries the caller's trace on unchanged.
"""

import asyncio
import re
import time
import uuid
from typing import Any, Final
from urllib.parse import unquote

from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.api_keys import ApiKeyRegistry, Principal
from services.gateway.jwt_auth import IdentityProviderUnavailable, JwtVerifier, looks_like_jwt
from services.gateway.problems import PROBLEM_CONTENT_TYPE, ApiProblem, ProblemCode
from services.gateway.rate_limit import KeyRateLimiter

REQUEST_ID_HEADER: Final = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")

REQUESTS = Counter(
    "gateway_requests_total",
    "HTTP requests by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "gateway_request_seconds", "HTTP request latency by route template.", ["method", "route"]
)


STREAM_KEY_COOKIE: Final = "agent_runtime_key"


def stream_authorization(scope: Scope, headers: Headers) -> str:
    """The Authorization header; for a GET of a live stream without one, the key cookie.

    A browser's EventSource cannot send headers, only cookies. The cookie is read for that
    one read-only route and no other, so a cross-site form can never write with it (and the
    console sets it SameSite=Strict)."""
    authorization = headers.get("authorization", "")
    path = str(scope.get("path", ""))
    if authorization or scope.get("method") != "GET" or not path.endswith("/events"):
        return authorization
    key = cookie_parser(headers.get("cookie", "")).get(STREAM_KEY_COOKIE, "")
    # Percent-decoded: a cookie value cannot hold every character a key may have (`;`, space…),
    # so the console writes it with encodeURIComponent (`+`, `/`, `=` of a base64 key too).
    key = unquote(key)
    return f"Bearer {key}" if key else ""


class BodyTooLarge(ApiProblem):
    def __init__(self, limit: int) -> None:
        super().__init__(ProblemCode.PAYLOAD_TOO_LARGE, f"at most {limit} bytes")


def problem_response(
    problem: ApiProblem, *, instance: str | None, request_id: str | None
) -> JSONResponse:
    return JSONResponse(
        problem.body(instance=instance, request_id=request_id),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_CONTENT_TYPE,
    )


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: ApiKeyRegistry,
        limiter: KeyRateLimiter,
        max_body_bytes: int,
        jwt: JwtVerifier | None = None,
        retry_after_s: int = 5,
        caller_trace_context: bool = False,
    ) -> None:
        self.app = app
        self._caller_trace_context = caller_trace_context
        self._keys = keys
        self._jwt = jwt
        self._retry_after_s = retry_after_s
        self._limiter = limiter
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        status_seen = {"status": 500}
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        method = scope.get("method", "")
        path = scope.get("path", "")
        token = None
        if self._caller_trace_context and ("traceparent" in headers or "baggage" in headers):
            token = otel_context.attach(propagate.extract(headers))
        try:
            problem = await self._admit(scope, headers, state, extra)
            if problem is not None:
                response = problem_response(problem, instance=path, request_id=request_id)
                await response(scope, receive, send_with_headers)
            else:
                await self.app(scope, self._limited(receive, headers), send_with_headers)
        finally:
            if token is not None:
                otel_context.detach(token)
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(method, template, str(status_seen["status"])).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - started)

    async def _admit(
        self,
        scope: Scope,
        headers: Headers,
        state: dict[str, Any],
        extra: list[tuple[bytes, bytes]],
    ) -> ApiProblem | None:
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self._max_body_bytes):
            return BodyTooLarge(self._max_body_bytes)
        if not str(scope.get("path", "")).startswith("/v1/"):
            return None
        try:
            principal = await self._authenticate(stream_authorization(scope, headers))
        except IdentityProviderUnavailable as error:
            return ApiProblem(
                ProblemCode.IDENTITY_PROVIDER_UNAVAILABLE,
                str(error)[:300],
                headers={"Retry-After": str(self._retry_after_s)},
            )
        if principal is None:
            return ApiProblem(
                ProblemCode.UNAUTHORIZED,
                "send `Authorization: Bearer <API key>`",
                headers={"WWW-Authenticate": 'Bearer realm="agent-runtime"'},
            )
        state["principal"] = principal
        decision = self._limiter.check(principal.key_id)
        extra.extend((k.lower().encode(), v.encode()) for k, v in decision.headers().items())
        if not decision.allowed:
            return ApiProblem(
                ProblemCode.RATE_LIMITED,
                f"at most {decision.limit} requests at once, refilled over the minute",
            )
        return None

    async def _authenticate(self, authorization: str) -> Principal | None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        if self._jwt is not None and looks_like_jwt(token):
            return await asyncio.to_thread(self._jwt.verify, token)
        return self._keys.authenticate(token)

    def _limited(self, receive: Receive, headers: Headers) -> Receive:
        """Counts body bytes as they arrive: a chunked body has no Content-Length to check."""
        limit = self._max_body_bytes
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return counting
