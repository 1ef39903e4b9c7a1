"""Failures of MCP tool calls, classified once so retries, the breaker and the result agree.

`error_class` ends up in the published tool result (as an error result the model reads).
`retryable`: another attempt may succeed — and it is made only for an idempotent tool, unless
`sent` is False (the request never left: the server could not be reached, so no tool ran).
`trips_breaker`: evidence that the server is unhealthy (unreachable, dropped, too slow); a
tool's own error, an unknown tool or bad arguments are not, so they never open the circuit.
"""

from services.runtime.secret_scrubbing import scrub_text


class ToolCallError(Exception):
    error_class = "tool_error"
    retryable = False
    trips_breaker = False
    sent = True

    def __init__(self, message: str) -> None:
        super().__init__(scrub_text(message))


class UnknownServer(ToolCallError):
    """`runs_on` names a server the MCP servers file does not configure."""

    error_class = "unknown_server"


class ServerUnavailable(ToolCallError):
    """The server could not be started/reached, or the connection dropped during the call."""

    error_class = "server_unavailable"
    retryable = True
    trips_breaker = True

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class CallTimedOut(ToolCallError):
    """No answer within the server's `call_timeout_s` (the call is cancelled on the server)."""

    error_class = "timeout"
    retryable = True
    trips_breaker = True


class CallRejected(ToolCallError):
    """The server answered the request with a JSON-RPC error (unknown tool, invalid params)."""

    error_class = "rejected"


class CircuitOpen(ToolCallError):
    """The server's circuit is open: failed fast, nothing was sent."""

    error_class = "circuit_open"
    sent = False
