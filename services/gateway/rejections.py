"""Every `CommandRejected` reason → one problem code (and so one HTTP status).

`tenant_mismatch` answers exactly like `unknown_session` (404): another tenant's session must
look missing. The one exception is creating a session under an id another tenant holds: the
id is taken (409 `session_exists`), as it is for one's own session; ids are global, so a
client that must not learn about other tenants' ids lets the gateway choose the id.
"""

from collections.abc import Mapping
from typing import Final

from contracts.session_events import RejectionReason
from services.gateway.problems import ProblemCode

REJECTION_PROBLEMS: Final[Mapping[RejectionReason, ProblemCode]] = {
    RejectionReason.UNKNOWN_SESSION: ProblemCode.SESSION_NOT_FOUND,
    RejectionReason.TENANT_MISMATCH: ProblemCode.SESSION_NOT_FOUND,
    RejectionReason.SESSION_EXISTS: ProblemCode.SESSION_EXISTS,
    RejectionReason.SESSION_CLOSED: ProblemCode.SESSION_CLOSED,
    RejectionReason.SESSION_EXPIRED: ProblemCode.SESSION_EXPIRED,
    RejectionReason.SESSION_ERASED: ProblemCode.SESSION_ERASED,
    RejectionReason.DUPLICATE_ID: ProblemCode.DUPLICATE_ID,
    RejectionReason.SWITCH_LIMIT_REACHED: ProblemCode.SWITCH_LIMIT_REACHED,
    RejectionReason.QUEUE_FULL: ProblemCode.QUEUE_FULL,
    RejectionReason.TURN_IN_FLIGHT: ProblemCode.TURN_IN_FLIGHT,
    RejectionReason.TURN_NOT_RUNNING: ProblemCode.TURN_NOT_RUNNING,
    RejectionReason.INVALID_AGENT: ProblemCode.INVALID_AGENT,
    RejectionReason.NOT_CLOSED: ProblemCode.NOT_CLOSED,
    RejectionReason.TENANT_NOT_ALLOWED: ProblemCode.TENANT_NOT_ALLOWED,
    RejectionReason.SIGNATURE_INVALID: ProblemCode.SIGNATURE_INVALID,
    RejectionReason.NOT_RETRYABLE: ProblemCode.NOT_RETRYABLE,
    RejectionReason.TOOL_CALL_NOT_PENDING: ProblemCode.TOOL_CALL_NOT_PENDING,
}


def problem_for_rejection(reason: RejectionReason, *, creating: bool = False) -> ProblemCode:
    if creating and reason is RejectionReason.TENANT_MISMATCH:
        return ProblemCode.SESSION_EXISTS
    return REJECTION_PROBLEMS[reason]
