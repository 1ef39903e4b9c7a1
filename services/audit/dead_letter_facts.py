"""The audit view of the dead-letters topic: how a malformed record shows up in the trail.

A malformed upstream record never decodes, so it can only enter the audit trail through the
dead letter its consumer published about it. Its tenant, turn and invocation come from the
original bytes when they still parse as JSON with valid ids: an unverified claim, but the one
an operator searching a tenant's trail needs to see.
"""

import base64
import binascii
import json

from contracts.audit import AuditOutcome
from contracts.base import is_valid_id
from contracts.dead_letters import DeadLetter
from contracts.envelope import H_ID, H_TYPE
from services.audit.fact_view import DetailValue, FactView

UNDECODABLE_DEAD_LETTER = "dead_letter.undecodable"
"""fact_type of a record on the dead-letters topic that is not itself a valid DeadLetter."""


def dead_letter_view(letter: DeadLetter) -> FactView:
    original = _from_b64(letter.original_value_b64)
    claims = _claimed_ids(original)
    headers = {h.name.lower(): h.value_b64 for h in letter.original_headers}
    detail: dict[str, DetailValue] = {
        "dead_lettered_by": letter.source_service,
        "consumer_group": letter.consumer_group,
        "reason": letter.reason.value,
        "error_class": letter.error_class,
        "error_message": letter.error_message,
        "attempts": letter.attempts,
        "dead_letter_origin_topic": letter.origin_topic,
        "dead_letter_origin_partition": letter.origin_partition,
        "dead_letter_origin_offset": letter.origin_offset,
        "original_type": _header_text(headers.get(H_TYPE)),
        "original_id": _header_text(headers.get(H_ID)),
        "original_bytes": None if original is None else len(original),
    }
    return FactView(
        AuditOutcome.DEAD_LETTERED,
        tenant_id=claims.get("tenant_id"),
        turn_id=claims.get("turn_id"),
        invocation_id=claims.get("invocation_id"),
        detail=detail,
        content=None if original is None else original.decode("utf-8", errors="replace"),
    )


def undecodable_view(value: bytes | None, error: str) -> FactView:
    """A record on the dead-letters topic that is no valid DeadLetter: audited as it is,
    never dead-lettered again (see docs/audit.md, "No dead-letter loop")."""
    return FactView(
        AuditOutcome.DEAD_LETTERED,
        detail={"error": error, "original_bytes": None if value is None else len(value)},
        content=None if value is None else value.decode("utf-8", errors="replace"),
    )


def _from_b64(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _header_text(value_b64: str | None) -> str | None:
    raw = _from_b64(value_b64)
    return None if raw is None else raw.decode("utf-8", errors="replace")[:200]


def _claimed_ids(original: bytes | None) -> dict[str, str]:
    if original is None:
        return {}
    try:
        body = json.loads(original)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return {}
    if not isinstance(body, dict):
        return {}
    return {
        name: value
        for name in ("tenant_id", "turn_id", "invocation_id")
        if isinstance(value := body.get(name), str) and is_valid_id(value)
    }
