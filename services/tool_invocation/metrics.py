"""Prometheus metrics of tool-invocation (the runtime's /metrics endpoint exposes the default
registry). Module-level, because prometheus_client refuses to register a name twice."""

from prometheus_client import Counter, Gauge, Histogram

CALLS = Counter(
    "tool_calls_total",
    "Finished MCP tool calls by server and outcome (ok, error: the tool's own error result, "
    "or the failure's error class).",
    ["server", "outcome"],
)
RETRIES = Counter(
    "tool_call_retries_total", "Retried tool-call attempts.", ["server", "error_class"]
)
DURATION = Histogram(
    "tool_call_duration_seconds",
    "Wall time of one tool call, retries included.",
    ["server"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
REPLAYED = Counter(
    "tool_calls_replayed_total",
    "Redelivered tool calls answered from the kept result, without calling the tool.",
)
CANCELLED = Counter("tool_calls_cancelled_total", "Calls stopped because their turn ended.")
IN_FLIGHT = Gauge("tool_calls_in_flight", "Tool calls running in this process.")
CLAIM_WAITS = Counter(
    "tool_claim_waits_total",
    "Tool calls another owner held: waited for its result or its lease to lapse.",
)
CLAIM_TAKEOVERS = Counter(
    "tool_claim_takeovers_total",
    "Tool-call claims taken over after their lease lapsed (the holder crashed or lost MongoDB).",
)
CIRCUIT_STATE_CHANGES = Counter(
    "tool_circuit_breaker_state_changes_total",
    "Circuit breaker state changes per MCP server.",
    ["circuit", "state"],
)
CIRCUIT_OPEN = Gauge(
    "tool_circuit_breaker_open",
    "1 while the circuit of an MCP server is open or half-open, else 0.",
    ["circuit"],
)


def circuit_state_changed(circuit: str, state: str) -> None:
    CIRCUIT_STATE_CHANGES.labels(circuit=circuit, state=state).inc()
    CIRCUIT_OPEN.labels(circuit=circuit).set(0 if state == "closed" else 1)
