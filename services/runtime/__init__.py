"""The shared service runtime: key-ordered concurrent Kafka consumption on FastStream.

Public API (everything a service needs):

- `RuntimeSettings` — pydantic-settings, env prefix `AGENT_RUNTIME_`; subclass it per service.
- `ServiceRuntime` — the FastStream app, broker, consumers, publishing, health, telemetry.
- `Record` — what a handler receives; `Handler` = `async (Record) -> None`.
- `RetryableError` — raise for transient failures (retried with backoff, that key only);
  any other exception dead-letters the record. `ServiceRuntime.publish` and the Mongo adapters
  (`database_outage`, mongo_errors.py) already raise it for outages: handlers catch no driver
  errors. `UnpublishableRecord` — the broker refuses a record itself (permanent).
- `Publish` — the signature of `ServiceRuntime.publish`, for handlers and jobs that publish.
- `bind_log_context(turn_id=...)` — add fields to every log line of the current record.
- `current_traceparent()` — W3C traceparent of the active span, for `contracts.codec.encode`.

How it works and why it was built rather than reused: docs/runtime.md.
"""

from services.runtime.errors import RetryableError, UnpublishableRecord
from services.runtime.keyed_consumer import Handler
from services.runtime.publishing import Publish
from services.runtime.record import PartitionId, Record
from services.runtime.service_runtime import ServiceRuntime
from services.runtime.settings import RuntimeSettings
from services.runtime.telemetry.log_context import bind_log_context
from services.runtime.telemetry.tracing import current_traceparent

__all__ = [
    "Handler",
    "PartitionId",
    "Publish",
    "Record",
    "RetryableError",
    "RuntimeSettings",
    "ServiceRuntime",
    "UnpublishableRecord",
    "bind_log_context",
    "current_traceparent",
]
