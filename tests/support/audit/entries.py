"""Audit entries built the way the handler builds them, for audit log tests."""

from datetime import UTC, datetime

from contracts.audit import AuditOutcome
from contracts.topics import TopicName
from services.audit.fact_view import FactView
from services.audit.records import AuditEntry, FactIdentity, Origin, build_entry
from services.audit.redaction import RedactionPolicy

T0 = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def entry(
    fact_id: str,
    *,
    session: str = "s-1",
    tenant: str = "acme",
    fact_type: str = "session.created.v1",
    recorded_at: datetime = T0,
    content: str = "hello",
) -> AuditEntry:
    fact = FactIdentity(fact_id, fact_type, T0, session, "session-commands", correlation_id="c")
    view = FactView(AuditOutcome.ACCEPTED, tenant_id=tenant, content=content)
    origin = Origin(TopicName.SESSION_EVENTS, "x.session-events", 0, 1)
    return build_entry(fact, view, origin, RedactionPolicy(), recorded_at)
