"""The failure a handler signals as transient; every other exception means permanent.

Transient or permanent is decided once per kind of I/O, where the driver's errors are caught:
`ServiceRuntime.publish` for the broker (publishing.py), `database_outage` for MongoDB
(mongo_errors.py). Handlers see only these two names, never a driver's exceptions.
"""


class RetryableError(Exception):
    """A transient failure (database or broker unavailable, timeout, rate limit).

    The runtime retries the record with exponential backoff. Only this record's key waits:
    other sessions keep flowing. Raise anything else for a permanent failure, which sends the
    record to the dead-letter topic and moves on.
    """


class UnpublishableRecord(ValueError):
    """The broker refuses this record itself (too large, malformed): publishing it again
    cannot succeed, so it is permanent and the runtime dead-letters the record that caused it."""
