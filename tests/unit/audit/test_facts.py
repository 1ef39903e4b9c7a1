"""Every contract message audit reads has a view; the outcome table is the documented one."""

import pytest

from contracts.audit import AuditOutcome
from contracts.base import Message
from contracts.dead_letters import DeadLetter
from contracts.registry import TOPIC_MESSAGES, type_name
from contracts.topics import TopicName
from services.audit.dead_letter_facts import dead_letter_view
from services.audit.fact_view import UnauditableFact
from services.audit.facts import view_of
from services.audit.handler import AUDITED_TOPICS
from tests.support.contracts.samples import every_message

pytestmark = pytest.mark.unit

OUTCOMES = {
    "session.create.v1": AuditOutcome.RECORDED,
    "session.submit_user_message.v1": AuditOutcome.RECORDED,
    "session.switch_agent.v1": AuditOutcome.RECORDED,
    "session.update.v1": AuditOutcome.RECORDED,
    "session.close.v1": AuditOutcome.RECORDED,
    "session.reopen.v1": AuditOutcome.RECORDED,
    "session.erase.v1": AuditOutcome.RECORDED,
    "session.retry_turn.v1": AuditOutcome.RECORDED,
    "session.cancel_turn.v1": AuditOutcome.RECORDED,
    "turn.cancelled.v1": AuditOutcome.ACCEPTED,
    "turn.stopped.v1": AuditOutcome.RECORDED,
    "turn.switch_agent.v1": AuditOutcome.RECORDED,
    "turn.complete.v1": AuditOutcome.RECORDED,
    "turn.fail.v1": AuditOutcome.RECORDED,
    "session.expire.v1": AuditOutcome.RECORDED,
    "session.created.v1": AuditOutcome.ACCEPTED,
    "session.user_message_accepted.v1": AuditOutcome.ACCEPTED,
    "turn.started.v1": AuditOutcome.RECORDED,
    "session.agent_switched.v1": AuditOutcome.ACCEPTED,
    "session.assistant_message_appended.v1": AuditOutcome.RECORDED,
    "turn.completed.v1": AuditOutcome.SUCCEEDED,
    "turn.failed.v1": AuditOutcome.FAILED,
    "session.updated.v1": AuditOutcome.ACCEPTED,
    "session.closed.v1": AuditOutcome.ACCEPTED,
    "session.reopened.v1": AuditOutcome.ACCEPTED,
    "session.erased.v1": AuditOutcome.ACCEPTED,
    "session.expired.v1": AuditOutcome.ACCEPTED,
    "session.command_rejected.v1": AuditOutcome.REJECTED,
    "llm.requested.v1": AuditOutcome.RECORDED,
    "llm.completed.v1": AuditOutcome.SUCCEEDED,
    "llm.failed.v1": AuditOutcome.FAILED,
    "dead_letter.v1": AuditOutcome.DEAD_LETTERED,
    "session.submit_tool_result.v1": AuditOutcome.RECORDED,
    "session.approve_tool_call.v1": AuditOutcome.RECORDED,
    "session.deny_tool_call.v1": AuditOutcome.RECORDED,
    "turn.request_tool_calls.v1": AuditOutcome.RECORDED,
    "turn.record_tool_result.v1": AuditOutcome.RECORDED,
    "turn.expire_tool_calls.v1": AuditOutcome.RECORDED,
    "tool.call_requested.v1": AuditOutcome.ACCEPTED,
    "tool.approval_requested.v1": AuditOutcome.ACCEPTED,
    "tool.call_approved.v1": AuditOutcome.ACCEPTED,
    "tool.call_denied.v1": AuditOutcome.ACCEPTED,
    "tool.result_recorded.v1": AuditOutcome.ACCEPTED,
    "turn.tool_round_completed.v1": AuditOutcome.RECORDED,
}

AUDITED = [
    m
    for m in every_message()
    if any(type(m) in TOPIC_MESSAGES[t] for t in AUDITED_TOPICS) and not isinstance(m, DeadLetter)
]


def test_the_table_covers_every_type_on_the_audited_topics() -> None:
    audited_types = {type_name(m) for t in AUDITED_TOPICS for m in TOPIC_MESSAGES[t]}
    assert audited_types == set(OUTCOMES)
    assert {type_name(type(m)) for m in AUDITED} | {"dead_letter.v1"} == audited_types


@pytest.mark.parametrize("message", AUDITED, ids=lambda m: type_name(type(m)))
def test_outcome_and_tenant(message: Message) -> None:
    view = view_of(message)
    assert view.outcome is OUTCOMES[type_name(type(message))]
    assert view.tenant_id == getattr(message, "tenant_id", None)
    assert view.turn_id == getattr(message, "turn_id", None)
    assert view.invocation_id == getattr(message, "invocation_id", None)


@pytest.mark.parametrize("message", AUDITED, ids=lambda m: type_name(type(m)))
def test_content_fields_go_to_content_never_to_detail(message: Message) -> None:
    view = view_of(message)
    body = message.model_dump()
    if isinstance(body.get("content"), str) and body["content"]:
        assert view.content == body["content"]
        assert body["content"] not in {str(v) for v in view.detail.values()}


def test_a_dead_letter_is_dead_lettered() -> None:
    letter = next(m for m in every_message() if isinstance(m, DeadLetter))
    assert dead_letter_view(letter).outcome is AuditOutcome.DEAD_LETTERED
    with pytest.raises(UnauditableFact):
        view_of(letter)


def test_the_token_stream_is_not_audited() -> None:
    assert TopicName.LLM_STREAM not in AUDITED_TOPICS
    delta = next(m for m in every_message() if type_name(type(m)) == "llm.token_delta.v1")
    with pytest.raises(UnauditableFact):
        view_of(delta)


def test_tool_arguments_and_results_are_content_not_detail() -> None:
    for message in AUDITED:
        arguments = getattr(message, "arguments", None)
        if isinstance(arguments, dict):
            view = view_of(message)
            assert [piece.name for piece in view.parts] == ["arguments"]
            assert str(arguments) not in {str(v) for v in view.detail.values()}
