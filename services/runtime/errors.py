"""The failure a handler signals as transient; every other exception means permanent."""


class RetryableError(Exception):
    """A transient failure (database or broker unavailable, timeout, rate limit).

    The runtime retries the record with exponential backoff. Only this record's key waits:
    other sessions keep flowing. Raise anything else for a permanent failure, which sends the
    record to the dead-letter topic and moves on.
    """
