"""Exception handlers: every failure leaves as problem+json, never as a traceback."""

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from starlette.exceptions import HTTPException

from contracts.codec import EncodeError
from services.gateway.edge import problem_response
from services.gateway.problems import ApiProblem, FieldError, ProblemCode

log = logging.getLogger(__name__)

_BY_STATUS = {
    400: ProblemCode.MALFORMED_REQUEST,
    401: ProblemCode.UNAUTHORIZED,
    404: ProblemCode.NOT_FOUND,
    405: ProblemCode.METHOD_NOT_ALLOWED,
    413: ProblemCode.PAYLOAD_TOO_LARGE,
    415: ProblemCode.UNSUPPORTED_MEDIA_TYPE,
    422: ProblemCode.VALIDATION_FAILED,
}


_PARAMETER = re.compile(r"\\\{[a-z_]+\\\}")  # `{session_id}` once `re.escape`d
_NOT_UNICODE = "a text in the body is not valid Unicode (a lone surrogate escape)"
_SEND_JSON = "the body must be JSON, sent with Content-Type: application/json"

_AGENT_FIELDS = frozenset({"agent", "initial_agent"})


def _code_of(errors: Sequence[Any]) -> ProblemCode:
    """An agent name outside the catalogue is `invalid_agent`, the code a command naming one
    gets from session-commands (docs/gateway.md); any other mismatch (a number for a name, a
    missing field) is `validation_failed`."""
    if errors and all(
        e.get("type") == "enum"
        and isinstance(e.get("input"), str)
        and str(tuple(e.get("loc", ("",)))[-1]) in _AGENT_FIELDS
        for e in errors
    ):
        return ProblemCode.INVALID_AGENT
    return ProblemCode.VALIDATION_FAILED


def _body_not_json(errors: Sequence[Any]) -> bool:
    """FastAPI parses a body as JSON only under `Content-Type: application/json` (or `+json`);
    any other body reaches validation as the raw bytes. That is the wrong media type, not a
    schema mismatch: 415, and the client learns to send JSON."""
    return any(
        tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes | bytearray)
        for e in errors
    )


def _allowed_methods(request: Request) -> str:
    """The methods the API document gives for this path (RFC 9110: a 405 carries `Allow`).
    Starlette's own header names only the first route that matched the path, and FastAPI
    makes a route per method, so `GET` and `POST /v1/sessions` would say `POST` alone."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(_PARAMETER.sub("[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI, *, retry_after_s: int) -> None:
    def render(request: Request, problem: ApiProblem) -> JSONResponse:
        return problem_response(
            problem,
            instance=request.url.path,
            request_id=getattr(request.state, "request_id", None),
        )

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return render(request, exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if _body_not_json(errors):
            return render(request, ApiProblem(ProblemCode.UNSUPPORTED_MEDIA_TYPE, _SEND_JSON))
        if any(e.get("type") == "json_invalid" for e in errors):
            return render(request, ApiProblem(ProblemCode.MALFORMED_REQUEST, "invalid JSON"))
        fields = [
            FieldError(
                location=".".join(str(p) for p in e.get("loc", ())),
                message=str(e.get("msg", ""))[:300],  # never echo the input itself
            )
            for e in errors[:20]
        ]
        where = ", ".join(dict.fromkeys(f.location for f in fields))
        detail = f"invalid: {where}"[:300]
        return render(request, ApiProblem(_code_of(errors), detail, errors=fields))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if isinstance(exc.__cause__, ApiProblem):  # raised while FastAPI read the body
            return render(request, exc.__cause__)
        code = _BY_STATUS.get(exc.status_code, ProblemCode.MALFORMED_REQUEST)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return render(request, ApiProblem(code, str(exc.detail)[:300], headers=headers))

    async def on_unencodable(request: Request, exc: Exception) -> JSONResponse:
        # The command could not be serialised, so nothing was published: a text field held a
        # lone surrogate (`"\\ud800"` parses into a Python string, not into JSON bytes).
        return render(request, ApiProblem(ProblemCode.VALIDATION_FAILED, _NOT_UNICODE))

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %r", exc)
        problem = ApiProblem(
            ProblemCode.DATABASE_UNAVAILABLE,
            "the session store did not answer; retry later",
            headers={"Retry-After": str(retry_after_s)},
        )
        return render(request, problem)

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, ApiProblem(ProblemCode.INTERNAL_ERROR))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(EncodeError, on_unencodable)
    app.add_exception_handler(PyMongoError, on_database)
    app.add_exception_handler(Exception, on_anything)
