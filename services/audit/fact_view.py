"""What the audit trail says about one fact, before ids, envelope and redaction are added."""

from dataclasses import dataclass, field

from contracts.audit import AuditOutcome

DetailValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class ContentPiece:
    """Raw text of one content part, before redaction."""

    name: str
    text: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class FactView:
    outcome: AuditOutcome
    tenant_id: str | None = None
    turn_id: str | None = None
    invocation_id: str | None = None
    detail: dict[str, DetailValue] = field(default_factory=dict)
    content: str | None = None
    parts: tuple[ContentPiece, ...] = ()


class UnauditableFact(TypeError):
    """A message type this module has no view for: a programming error, not bad input."""
