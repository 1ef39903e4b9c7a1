"""The one rule for MongoDB failures: an outage is transient, everything else is not.

Every Mongo adapter (session repository, kept LLM results, audit log) wraps its driver calls in
`database_outage(...)`, so a handler sees `RetryableError` for a server that does not answer,
lost its primary, timed out or could not confirm a write — and the driver's own exception for
anything else (a bad document, a failed validation), which the runtime dead-letters.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from pymongo.errors import ConnectionFailure, ExecutionTimeout, WriteConcernError

from services.runtime.errors import RetryableError

# ConnectionFailure covers AutoReconnect, NetworkTimeout, NotPrimaryError and
# ServerSelectionTimeoutError; WriteConcernError covers WTimeoutError.
_OUTAGES: Final = (ConnectionFailure, ExecutionTimeout, WriteConcernError)


@asynccontextmanager
async def database_outage(what: str) -> AsyncIterator[None]:
    """Re-raise a MongoDB outage inside the block as `RetryableError` naming `what`."""
    try:
        yield
    except _OUTAGES as exc:
        raise RetryableError(f"{what} unavailable: {exc}") from exc
