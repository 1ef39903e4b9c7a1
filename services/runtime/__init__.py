"""The shared service runtime: key-ordered concurrent Kafka consumption on FastStream.

Public API (everything a service needs):

- `RuntimeSettings` — pydantic-settings, env prefix `AGENT_RUNTIME_`; subclass it per service.
- `ServiceRuntime` — the FastStream app, broker, consumers, publishing, health, telemetry.
- `Record` — what a handler receives; `Handler` = `async (Record) -> None`.
- `RetryableError` — raise for transient failures (retried with backoff, that key only);
  any other exception dead-letters the record.
- `bind_log_context(turn_id=...)` — add fields to every log line of the current record.
- `current_traceparent()` — W3C traceparent of the active span, for `contracts.codec.encode`.

How it works and why it was built rather than reused: docs/runtime.md.
"""

from services.runtime.errors import RetryableError
from services.runtime.keyed_consumer import Handler
from services.runtime.record import PartitionId, Record
from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings
from services.runtime.telemetry.log_context import bind_log_context
from services.runtime.telemetry.tracing import current_traceparent

__all__ = [
    "Handler",
    "PartitionId",
    "Record",
    "RetryableError",
    "RuntimeSettings",
    "ServiceRuntime",
    "bind_log_context",
    "current_traceparent",
]
