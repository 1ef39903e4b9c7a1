"""The two outcomes a handler can signal besides success."""


class RetryableError(Exception):
    """A transient failure (database or broker unavailable, timeout, rate limit).

    The runtime retries the record with exponential backoff. Only this record's key waits:
    other sessions keep flowing. Raise anything else for a permanent failure, which sends the
    record to the dead-letter topic and moves on.
    """


class RuntimeStateError(RuntimeError):
    """The runtime was used in a state that does not allow it (e.g. publish before start)."""
