"""Prometheus metrics of llm-invocation (the runtime's /metrics endpoint exposes the default
registry). Module-level, because prometheus_client refuses to register a name twice."""

from prometheus_client import Counter, Gauge, Histogram

CIRCUIT_STATE_CHANGES = Counter(
    "llm_circuit_breaker_state_changes_total",
    "Circuit breaker state changes per (provider, model) circuit.",
    ["circuit", "state"],
)
CIRCUIT_OPEN = Gauge(
    "llm_circuit_breaker_open",
    "1 while the circuit of (provider, model) is open or half-open, else 0.",
    ["circuit"],
)
INVOCATIONS = Counter(
    "llm_invocations_total",
    "Finished invocations by outcome (completed, or the LLMFailed error class).",
    ["provider", "model", "outcome"],
)
REPLAYED = Counter(
    "llm_invocations_replayed_total",
    "Redelivered requests answered from the kept result, without calling the provider.",
)
ATTEMPTS = Counter(
    "llm_provider_attempts_total",
    "Calls to the provider, by result (ok or the error class).",
    ["provider", "model", "result"],
)
RETRIES = Counter(
    "llm_provider_retries_total", "Retried provider attempts.", ["provider", "error_class"]
)
IN_FLIGHT = Gauge("llm_invocations_in_flight", "Invocations running in this process.")
DURATION = Histogram(
    "llm_invocation_duration_seconds",
    "Wall time of one invocation, limiter waits and retries included.",
    ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "llm_time_to_first_token_seconds",
    "From LLMRequested.occurred_at (orchestration asked) to the first text of the answer.",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 40),
)
TOKENS = Counter(
    "llm_tokens_total", "Tokens reported by the provider.", ["provider", "model", "kind"]
)
CLAIM_WAITS = Counter(
    "llm_claim_waits_total",
    "Requests whose invocation another owner held: waited for its result or its lease to lapse.",
)
CLAIM_TAKEOVERS = Counter(
    "llm_claim_takeovers_total",
    "Claims taken over after their lease lapsed (the holder crashed or lost MongoDB).",
)
DURABLE_STEP_RETRIES = Counter(
    "llm_durable_step_retries_total",
    "Retries of a finished invocation's durable steps (deltas, kept result, published result).",
)
