"""Errors as RFC 9457 problem details: one stable `code` per kind of failure, one status each.

Every error the gateway answers is an `ApiProblem` rendered as `application/problem+json`:
`type` is a URI built from the code, `code` repeats it for clients that switch on a string,
`request_id` ties it to the logs and the trace.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, Field

PROBLEM_CONTENT_TYPE: Final = "application/problem+json"
PROBLEM_TYPE_BASE: Final = "https://agent-runtime.example/problems/"


class ProblemCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    SESSION_NOT_FOUND = "session_not_found"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    MALFORMED_REQUEST = "malformed_request"
    VALIDATION_FAILED = "validation_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    RATE_LIMITED = "rate_limited"
    SESSION_EXISTS = "session_exists"
    SESSION_CLOSED = "session_closed"
    SESSION_EXPIRED = "session_expired"
    SESSION_ERASED = "session_erased"
    DUPLICATE_ID = "duplicate_id"
    SWITCH_LIMIT_REACHED = "switch_limit_reached"
    QUEUE_FULL = "queue_full"
    TURN_IN_FLIGHT = "turn_in_flight"
    TURN_NOT_RUNNING = "turn_not_running"
    INVALID_AGENT = "invalid_agent"
    NOT_CLOSED = "not_closed"
    TENANT_NOT_ALLOWED = "tenant_not_allowed"
    SIGNATURE_INVALID = "signature_invalid"
    NOT_RETRYABLE = "not_retryable"
    TOOL_CALL_NOT_PENDING = "tool_call_not_pending"
    BROKER_UNAVAILABLE = "broker_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    IDENTITY_PROVIDER_UNAVAILABLE = "identity_provider_unavailable"
    INVALID_STREAM_ID = "invalid_stream_id"
    STREAM_EXPIRED = "stream_expired"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    title: str


KINDS: Final[Mapping[ProblemCode, ProblemKind]] = {
    ProblemCode.UNAUTHORIZED: ProblemKind(401, "Missing or invalid credentials"),
    # The gateway's own publisher binding (docs/security.md) refused the command: a deployment
    # that does not let this gateway act for the caller's tenant, not a client error to retry.
    ProblemCode.TENANT_NOT_ALLOWED: ProblemKind(403, "This gateway may not act for your tenant"),
    ProblemCode.SIGNATURE_INVALID: ProblemKind(403, "The gateway's command signature was refused"),
    ProblemCode.SESSION_NOT_FOUND: ProblemKind(404, "No such session"),
    ProblemCode.NOT_FOUND: ProblemKind(404, "No such resource"),
    ProblemCode.METHOD_NOT_ALLOWED: ProblemKind(405, "Method not allowed"),
    ProblemCode.MALFORMED_REQUEST: ProblemKind(400, "The request is malformed"),
    ProblemCode.VALIDATION_FAILED: ProblemKind(422, "The request does not match the schema"),
    ProblemCode.PAYLOAD_TOO_LARGE: ProblemKind(413, "The request body is too large"),
    ProblemCode.UNSUPPORTED_MEDIA_TYPE: ProblemKind(415, "Send application/json"),
    ProblemCode.IDEMPOTENCY_KEY_REUSED: ProblemKind(
        422, "The Idempotency-Key was used for a different request"
    ),
    ProblemCode.RATE_LIMITED: ProblemKind(429, "Too many requests"),
    ProblemCode.SESSION_EXISTS: ProblemKind(409, "The session id is taken"),
    ProblemCode.SESSION_CLOSED: ProblemKind(409, "The session is closed"),
    ProblemCode.SESSION_EXPIRED: ProblemKind(409, "The session has expired"),
    ProblemCode.SESSION_ERASED: ProblemKind(409, "The session was erased"),
    ProblemCode.DUPLICATE_ID: ProblemKind(409, "The message id was already used"),
    ProblemCode.SWITCH_LIMIT_REACHED: ProblemKind(409, "The session's agent switches are used up"),
    ProblemCode.QUEUE_FULL: ProblemKind(429, "Too many messages wait for the running turn"),
    ProblemCode.TURN_IN_FLIGHT: ProblemKind(409, "A turn is running; send when it ends"),
    ProblemCode.TURN_NOT_RUNNING: ProblemKind(409, "No such turn is running"),
    ProblemCode.INVALID_AGENT: ProblemKind(422, "That agent cannot take over"),
    ProblemCode.NOT_CLOSED: ProblemKind(409, "The session is not closed"),
    ProblemCode.NOT_RETRYABLE: ProblemKind(
        409, "That turn is not the session's last, or it did not fail"
    ),
    ProblemCode.TOOL_CALL_NOT_PENDING: ProblemKind(
        409, "The running turn does not wait for that tool call in this way"
    ),
    ProblemCode.BROKER_UNAVAILABLE: ProblemKind(503, "The message broker is unavailable"),
    ProblemCode.DATABASE_UNAVAILABLE: ProblemKind(503, "The session store is unavailable"),
    ProblemCode.IDENTITY_PROVIDER_UNAVAILABLE: ProblemKind(
        503, "The identity provider's keys cannot be fetched"
    ),
    ProblemCode.INVALID_STREAM_ID: ProblemKind(400, "Not an event id of this session's stream"),
    ProblemCode.STREAM_EXPIRED: ProblemKind(410, "The missed events are past retention"),
    ProblemCode.INTERNAL_ERROR: ProblemKind(500, "Internal error"),
}


class FieldError(BaseModel):
    location: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the gateway's stable `code`."""

    type: str = Field(description=f"{PROBLEM_TYPE_BASE}<code>")
    title: str
    status: int
    code: ProblemCode
    detail: str = Field(description="What went wrong in this request (never the input itself).")
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = None
    command_id: str | None = Field(default=None, description="The refused command, if any.")
    errors: list[FieldError] | None = Field(default=None, description="Per-field problems.")


@dataclass(eq=False)
class ApiProblem(Exception):
    code: ProblemCode
    detail: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    errors: list[FieldError] | None = None
    command_id: str | None = None

    @property
    def status(self) -> int:
        return KINDS[self.code].status

    def body(self, *, instance: str | None, request_id: str | None) -> dict[str, Any]:
        kind = KINDS[self.code]
        problem = Problem(
            type=PROBLEM_TYPE_BASE + self.code.value,
            title=kind.title,
            status=kind.status,
            code=self.code,
            # Always present (docs/gateway.md lists it in every problem): the kind's title when
            # nothing more specific is known.
            detail=self.detail or kind.title,
            instance=instance,
            request_id=request_id,
            command_id=self.command_id,
            errors=self.errors,
        )
        return problem.model_dump(mode="json", exclude_none=True)
