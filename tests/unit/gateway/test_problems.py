"""Every refusal of session-commands maps to exactly one problem, and every problem to a status."""

import pytest

from contracts.session_events import RejectionReason
from services.gateway.problems import KINDS, PROBLEM_TYPE_BASE, ApiProblem, ProblemCode
from services.gateway.rejections import REJECTION_PROBLEMS, problem_for_rejection


def test_every_rejection_reason_has_one_problem() -> None:
    assert set(REJECTION_PROBLEMS) == set(RejectionReason)


def test_every_problem_code_has_a_status_and_title() -> None:
    assert set(KINDS) == set(ProblemCode)
    assert all(400 <= kind.status <= 599 and kind.title for kind in KINDS.values())


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (RejectionReason.UNKNOWN_SESSION, 404),
        (RejectionReason.TENANT_MISMATCH, 404),
        (RejectionReason.SESSION_CLOSED, 409),
        (RejectionReason.SESSION_EXPIRED, 409),
        (RejectionReason.SESSION_EXISTS, 409),
        (RejectionReason.SWITCH_LIMIT_REACHED, 409),
        (RejectionReason.QUEUE_FULL, 429),
        (RejectionReason.INVALID_AGENT, 422),
    ],
)
def test_statuses_the_docs_promise(reason: RejectionReason, status: int) -> None:
    assert KINDS[problem_for_rejection(reason)].status == status


def test_another_tenants_session_looks_missing_except_when_creating_its_id() -> None:
    assert problem_for_rejection(RejectionReason.TENANT_MISMATCH) is (
        problem_for_rejection(RejectionReason.UNKNOWN_SESSION)
    )
    assert (
        problem_for_rejection(RejectionReason.TENANT_MISMATCH, creating=True)
        is ProblemCode.SESSION_EXISTS
    )


def test_problem_body_is_rfc9457_with_a_stable_code() -> None:
    body = ApiProblem(ProblemCode.SESSION_CLOSED, "closed", command_id="c-1").body(
        instance="/v1/sessions/s/messages", request_id="r-1"
    )
    assert body == {
        "type": PROBLEM_TYPE_BASE + "session_closed",
        "title": "The session is closed",
        "status": 409,
        "code": "session_closed",
        "detail": "closed",
        "instance": "/v1/sessions/s/messages",
        "request_id": "r-1",
        "command_id": "c-1",
    }


def test_a_problem_without_a_specific_detail_still_has_one() -> None:
    """docs/gateway.md lists `detail` in every problem body, not as optional."""
    body = ApiProblem(ProblemCode.INTERNAL_ERROR).body(instance="/v1/agents", request_id="r-2")
    assert body["detail"] == "Internal error"
