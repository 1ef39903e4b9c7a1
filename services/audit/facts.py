"""What the audit trail says about each kind of command and session fact: outcome, who/which, detail, content.

Pure: a decoded contract message in, a `FactView` out. The record builder adds the envelope,
origin, ids and redaction. Content is returned raw here and redacted there, so no text
leaves this module's caller unredacted.

Outcomes (docs/audit.md has the table):
- an external or internal command is `recorded`: it was received; whether it took effect is a
  later fact (an event, or CommandRejected);
- session facts that a command was accepted into are `accepted`; CommandRejected `rejected`;
- TurnCompleted and LLMCompleted `succeeded`; TurnFailed and LLMFailed `failed`;
- a dead letter `dead_lettered`;
- TurnStarted, AssistantMessageAppended and LLMRequested are steps: `recorded`.

LLM facts: llm_facts.py; tool calls: tool_facts.py; dead letters: dead_letter_facts.py.
"""

from contracts.audit import AuditOutcome
from contracts.base import Message
from contracts.commands import (
    CancelTurn,
    CloseSession,
    CreateSession,
    EraseSession,
    ReopenSession,
    RetryTurn,
    SubmitUserMessage,
    SwitchAgent,
    UpdateSession,
)
from contracts.dead_letters import DeadLetter
from contracts.session_events import (
    AgentSwitched,
    AssistantMessageAppended,
    CommandRejected,
    SessionClosed,
    SessionCreated,
    SessionErased,
    SessionExpired,
    SessionReopened,
    SessionUpdated,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    TurnStopped,
    UserMessageAccepted,
)
from contracts.turns import CompleteTurn, ExpireSession, FailTurn, SwitchAgentForTurn
from services.audit.cancellation_facts import cancellation_view
from services.audit.fact_view import ContentPiece, DetailValue, FactView, UnauditableFact
from services.audit.llm_facts import llm_view_of, usage_detail
from services.audit.tool_facts import ToolFact, tool_view


def view_of(message: Message) -> FactView:
    """The audit view of one fact. Dead letters need their raw bytes: see `dead_letter_view`."""
    if isinstance(message, ToolFact):
        return tool_view(message)
    match message:
        case CreateSession() | SessionCreated():
            return _session_opened(message)
        case SubmitUserMessage():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={"message_id": message.message_id},
                content=message.content,
                parts=_author(message.author_name),
            )
        case SwitchAgent():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={"target_agent": message.target_agent, "reason": message.reason},
            )
        case UpdateSession():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={
                    "title_changed": message.title is not None,
                    "description_changed": message.description is not None,
                },
                parts=_title(message.title),
            )
        case CloseSession():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={"reason": message.reason},
            )
        case ReopenSession():
            return FactView(AuditOutcome.RECORDED, tenant_id=message.tenant_id)
        case EraseSession():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={"requested_by": message.requested_by, "reason": message.reason},
            )
        case RetryTurn():
            return FactView(
                AuditOutcome.RECORDED, tenant_id=message.tenant_id, turn_id=message.turn_id
            )
        case SwitchAgentForTurn() | CompleteTurn() | FailTurn():
            return _turn_command(message)
        case CancelTurn() | TurnCancelled() | TurnStopped():
            return cancellation_view(message)
        case ExpireSession():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                detail={"last_activity_at": message.last_activity_at.isoformat()},
            )
        case _:
            return _session_or_llm_fact(message)


def _session_opened(message: CreateSession | SessionCreated) -> FactView:
    accepted = isinstance(message, SessionCreated)
    agent = message.agent if isinstance(message, SessionCreated) else message.initial_agent
    return FactView(
        AuditOutcome.ACCEPTED if accepted else AuditOutcome.RECORDED,
        tenant_id=message.tenant_id,
        detail={"agent": agent.value, "metadata_entries": len(message.metadata)},
        parts=_title(message.title)
        + (
            (ContentPiece("system_prompt", message.system_prompt),) if message.system_prompt else ()
        ),
    )


def _title(title: str | None) -> tuple[ContentPiece, ...]:
    """A title is what a person wrote: content, redacted like a message (erasure relies on
    the audit holding no text of an erased session under the default `hashed` mode)."""
    return (ContentPiece("title", title),) if title else ()


def _author(name: str | None) -> tuple[ContentPiece, ...]:
    """A person's name is personal data: content, redacted by policy, not a detail in clear
    (under `hashed` an erased session's trail must hold none of its text)."""
    return (ContentPiece("author_name", name),) if name else ()


def _turn_command(message: SwitchAgentForTurn | CompleteTurn | FailTurn) -> FactView:
    detail: dict[str, DetailValue] = {"step": message.step}
    content: str | None = None
    match message:
        case SwitchAgentForTurn():
            detail |= {
                "from_agent": message.from_agent.value,
                "target_agent": message.target_agent.value,
                "reason": message.reason,
            }
        case CompleteTurn():
            detail |= {"agent": message.agent.value, "note": message.note}
            detail |= usage_detail(message.usage)
            content = message.content
        case FailTurn():
            detail |= {
                "agent": message.agent.value,
                "error_class": message.error_class,
                "reason": message.reason,
            }
            content = message.partial_content or None
    return FactView(
        AuditOutcome.RECORDED,
        tenant_id=message.tenant_id,
        turn_id=message.turn_id,
        invocation_id=message.invocation_id,
        detail=detail,
        content=content,
    )


def _session_or_llm_fact(message: Message) -> FactView:
    match message:
        case UserMessageAccepted():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                detail={
                    "message_id": message.message_id,
                    "seq": message.seq,
                    "queued": message.queued,
                },
                content=message.content,
                parts=_author(message.author_name),
            )
        case TurnStarted():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                # The context window is a copy of messages audited on their own facts: only
                # its size is recorded, not the text a second time.
                detail={
                    "step": message.step,
                    "agent": message.agent.value,
                    "user_message_id": message.user_message_id,
                    "context_messages": len(message.context.messages),
                    "switch_count": message.context.switch_count,
                },
            )
        case AgentSwitched():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "from_agent": message.from_agent.value,
                    "to_agent": message.to_agent.value,
                    "reason": message.reason,
                    "switch_count": message.switch_count,
                    "initiated_by": message.initiated_by.value,
                    "step": message.step,
                },
            )
        case AssistantMessageAppended():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "message_id": message.message_id,
                    "seq": message.seq,
                    "agent": message.agent.value,
                    "interrupted": message.interrupted,
                },
                content=message.content,
            )
        case TurnCompleted():
            return FactView(
                AuditOutcome.SUCCEEDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={"agent": message.agent.value, "steps": message.steps},
            )
        case TurnFailed():
            return FactView(
                AuditOutcome.FAILED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "agent": message.agent.value,
                    "error_class": message.error_class,
                    "reason": message.reason,
                },
            )
        case SessionUpdated():
            return FactView(
                AuditOutcome.ACCEPTED, tenant_id=message.tenant_id, parts=_title(message.title)
            )
        case SessionClosed():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                detail={"reason": message.reason},
            )
        case SessionReopened():
            return FactView(AuditOutcome.ACCEPTED, tenant_id=message.tenant_id)
        case SessionErased():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                detail={"requested_by": message.requested_by, "reason": message.reason},
            )
        case SessionExpired():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                detail={"last_activity_at": message.last_activity_at.isoformat()},
            )
        case CommandRejected():
            return FactView(
                AuditOutcome.REJECTED,
                tenant_id=message.tenant_id,
                detail={
                    "rejected_command_id": message.rejected_command_id,
                    "rejected_command_type": message.rejected_command_type,
                    "reason": message.reason.value,
                    "detail": message.detail,
                },
            )
        case _:
            return _llm_fact(message)


def _llm_fact(message: Message) -> FactView:
    if isinstance(message, DeadLetter):
        raise UnauditableFact("dead letters are viewed by dead_letter_facts.dead_letter_view")
    return llm_view_of(message)
