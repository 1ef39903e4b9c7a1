"""What the audit trail says about stopping turns: the CancelTurn command, TurnCancelled (who
asked, why) and TurnStopped (whether a partial answer was kept). docs/audit.md has the table."""

from contracts.audit import AuditOutcome
from contracts.commands import CancelTurn
from contracts.session_events import TurnCancelled, TurnStopped
from services.audit.fact_view import FactView


def cancellation_view(message: CancelTurn | TurnCancelled | TurnStopped) -> FactView:
    match message:
        case CancelTurn():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "requested_by": message.requested_by,
                    "reason": message.reason,
                },
            )
        case TurnCancelled():
            return FactView(
                AuditOutcome.ACCEPTED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "reason": message.reason.value,
                    "requested_by": message.requested_by,
                    "detail": message.detail,
                    "agent": None if message.agent is None else message.agent.value,
                    "step": message.step,
                    "user_message_id": message.user_message_id,
                    "queued": message.queued,
                },
            )
        case TurnStopped():
            return FactView(
                AuditOutcome.RECORDED,
                tenant_id=message.tenant_id,
                turn_id=message.turn_id,
                detail={
                    "reason": message.reason.value,
                    "agent": message.agent.value,
                    "steps": message.steps,
                    "partial_message_id": message.partial_message_id,
                },
            )
