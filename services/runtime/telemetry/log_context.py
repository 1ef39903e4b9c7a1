"""Structured JSON logs that carry the session, turn and trace of the record being handled.

The runtime binds `session_id` (the record key), topic/partition/offset and the trace id per
record in a contextvar; a handler adds `turn_id` once it has decoded the message
(`bind_log_context(turn_id=...)`). Every log line in that task then carries them. Every JSON
line has `ts`, `level`, `service`, `logger`, `message` and the correlation fields
(`session_id`, `turn_id`, `trace_id`, `span_id`; null outside a record), then any extras.
"""

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from opentelemetry import trace

from services.runtime.telemetry.broker_outage_log import BrokerOutageSummary
from services.runtime.telemetry.library_chatter import LibraryChatterFilter
from services.runtime.uri_redaction import redact_uri_credentials

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "agent_runtime_log_context", default=_EMPTY
)

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}
# In every JSON line of every service, null when unknown: a log query or a dashboard can rely on
# the same keys whichever service, library or task wrote the line.
CORRELATION_FIELDS = ("session_id", "turn_id", "trace_id", "span_id")


def bind_log_context(**fields: Any) -> None:
    """Add fields for the rest of the current task (each record runs in its own context)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def current_log_fields() -> Mapping[str, Any]:
    return _context.get()


def set_log_fields(fields: Mapping[str, Any]) -> contextvars.Token[Mapping[str, Any]]:
    """Make `fields` (all of them: merge with `current_log_fields()` first) the current task's
    log fields until `reset_log_fields`; a lazy mapping is read only when a line is written."""
    return _context.set(fields)


def reset_log_fields(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound fields and the active span's ids onto each log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
            **dict.fromkeys(CORRELATION_FIELDS),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class CredentialRedactingFormatter(logging.Formatter):
    """Whatever a line says (our messages, a library's, a traceback), a URI's password is
    not in it."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_uri_credentials(self._inner.format(record))


def configure_logging(
    service: str, *, log_format: Literal["json", "console"] = "json", level: str = "INFO"
) -> BrokerOutageSummary:
    """Route the root logger to stderr (idempotent: replaces the handler it installed).

    Returns the handler's broker-outage summary: the caller runs its `check_recovery()` now and
    then, so the "broker reachable again" line is written even when nothing else logs.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("agent-runtime")
    broker_outages = BrokerOutageSummary()
    handler.addFilter(LibraryChatterFilter())
    handler.addFilter(broker_outages)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter(service)
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(session_id)s] %(message)s",
            defaults={"session_id": "-"},
        )
    handler.setFormatter(CredentialRedactingFormatter(formatter))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "agent-runtime"]
    root.addHandler(handler)
    root.setLevel(level)
    return broker_outages
