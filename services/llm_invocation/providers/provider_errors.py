"""Provider failures, classified once so retries, the breaker and LLMFailed agree.

`error_class` and `retryable` end up in LLMFailed. `trips_breaker` says whether the failure is
evidence that the provider is unhealthy: 5xx, timeouts, dropped connections and garbage
streams are; a 429 (we are too fast, the provider is fine) and a 4xx (our request is wrong)
are not, so they never open the circuit for everybody else.

The message is the provider's text (an error body, a proxy's page, a client error) and can
quote the API key ("Incorrect API key provided: sk-…") or a request header. It becomes
`LLMFailed.message`, then `TurnFailed.reason` on session-events and the kept result in MongoDB,
so it is scrubbed here, where every provider failure is made, with the one secret scrubber.
"""

import re

from services.runtime.secret_scrubbing import mask_values, scrub_text
from services.runtime.unicode_text import encodable

REDACTED_KEY = "[REDACTED:api_key]"
"""What `mask` writes (`mask_values` with kind `api_key`)."""
_MIN_CUT_KEY = 4
_STARRED = re.compile(r"(?P<head>[A-Za-z0-9._\-]*)(?P<stars>\*{3,})(?P<tail>[A-Za-z0-9._\-]*)")
"""A key shown with its middle starred out, as OpenAI's 401 quotes the key it was sent
("Incorrect API key provided: sk-abc12***********wxyz.")."""


class ProviderError(Exception):
    error_class = "provider_error"
    retryable = True
    trips_breaker = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        message = encodable(message)  # an error string inside a stream is decoded JSON
        super().__init__(scrub_text(message))
        self._unscrubbed = message  # for `mask`, which must see a key whole
        self.retry_after_s = retry_after_s

    def mask(self, secret: str) -> None:
        """Replace every occurrence of `secret` in the message: the configured key in a shape
        the scrubber's patterns may not know (a proxy's own key format). It runs on the text
        before the scrubber, which could otherwise have replaced only the part of the key that
        looks like a known shape (`sk-team` of `sk-team.Z9…`) and left the rest. The message is
        a provider's text cut to a length, so a key the cut went through ends it as a prefix of
        itself, before a closing quote at most: that goes too (from 4 characters; fewer say
        nothing of a 256-bit key)."""
        if not secret:
            return
        message = mask_values(self._unscrubbed, (secret,), "api_key")
        body = message.rstrip("'\"")
        quotes = message[len(body) :]
        for length in range(len(secret) - 1, _MIN_CUT_KEY - 1, -1):
            if body.endswith(secret[:length]):
                message = body[:-length] + REDACTED_KEY + quotes
                break
        message = _STARRED.sub(lambda m: _starred_key(m, secret), message)
        self._unscrubbed = message
        self.args = (scrub_text(message),)


def _starred_key(match: re.Match[str], secret: str) -> str:
    """The key's own start and end around stars (the provider's masked echo of it) go whole:
    the scrubber's patterns need 8 characters after `sk-` and the masked form keeps fewer, so
    the key's first and last characters were left in the message. Stars between other text
    stay. The tail may run on into the sentence ("…wxyz."): only its part that ends the key
    goes."""
    head, tail = match["head"], match["tail"]
    if not secret.startswith(head):
        return match[0]
    for length in range(len(tail), -1, -1):
        if secret.endswith(tail[:length]) and (head or length):
            return REDACTED_KEY + tail[length:]
    return match[0]


class RateLimited(ProviderError):
    """HTTP 429; `retry_after_s` from Retry-After / retry-after-ms when the provider sent it."""

    error_class = "rate_limited"
    trips_breaker = False


class ProviderUnavailable(ProviderError):
    """HTTP 5xx, or an error object in the middle of the stream."""

    error_class = "provider_error"


class ConnectionFailed(ProviderError):
    error_class = "connection_error"


class ProviderTimeout(ProviderError):
    """Connect, read (gap between chunks), write or pool timeout of one attempt."""

    error_class = "timeout"


class BadResponse(ProviderError):
    """Malformed SSE, invalid JSON, a stream that ends without finishing, an invalid tool call.

    Not retried: a provider that sends garbage once will most likely send it again, and the
    breaker (which it trips) is the right guard against a provider that keeps doing it.
    """

    error_class = "bad_response"
    retryable = False


class RequestRejected(ProviderError):
    """HTTP 4xx other than 429: bad request, auth, unknown model. Retrying cannot help."""

    error_class = "invalid_request"
    retryable = False
    trips_breaker = False

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
        if status_code in (401, 403):
            self.error_class = "auth_error"


class CircuitOpen(ProviderError):
    """The breaker of (provider, model) is open: fail fast without calling the provider."""

    error_class = "circuit_open"
    trips_breaker = False
