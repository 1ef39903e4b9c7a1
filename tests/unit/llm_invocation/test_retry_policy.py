"""When a provider call is retried, and after how long."""

import random
from datetime import UTC, datetime

import pytest

from services.llm_invocation.providers.provider_errors import (
    BadResponse,
    CircuitOpen,
    ConnectionFailed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from services.llm_invocation.providers.retry_after import retry_after_seconds
from services.llm_invocation.resilience.retry_policy import RetryPolicy
from services.runtime.retry import Backoff

pytestmark = pytest.mark.unit

POLICY = RetryPolicy(
    max_attempts=4, backoff=Backoff(initial_s=0.5, max_s=8.0), max_retry_after_s=30
)


def _delay(
    error: ProviderError, attempt: int = 1, *, streamed: bool = False, remaining: float = 100
) -> float | None:
    return POLICY.delay(
        attempt, error, streamed=streamed, remaining_s=remaining, rng=random.Random(1)
    )


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("429"),
        ProviderUnavailable("500"),
        ConnectionFailed("refused"),
        ProviderTimeout("read"),
    ],
)
def test_transient_failures_are_retried_with_growing_backoff(error: ProviderError) -> None:
    delays = [_delay(error, attempt) or -1.0 for attempt in (1, 2, 3)]
    assert 0.25 <= delays[0] <= 0.5
    assert 0.5 <= delays[1] <= 1.0
    assert 1.0 <= delays[2] <= 2.0


@pytest.mark.parametrize(
    "error",
    [BadResponse("garbage"), RequestRejected("400", status_code=400), CircuitOpen("open")],
)
def test_permanent_failures_and_an_open_circuit_are_not_retried(error: ProviderError) -> None:
    assert _delay(error) is None


def test_attempts_are_bounded() -> None:
    assert _delay(ProviderUnavailable("500"), attempt=4) is None


def test_nothing_is_retried_once_text_was_streamed() -> None:
    assert _delay(ConnectionFailed("dropped"), streamed=True) is None


def test_retry_after_is_honoured_with_a_little_jitter() -> None:
    delay = _delay(RateLimited("429", retry_after_s=5.0))
    assert delay is not None
    assert 5.0 <= delay <= 5.5


def test_a_retry_after_beyond_the_bound_gives_up() -> None:
    assert _delay(RateLimited("429", retry_after_s=31.0)) is None


def test_no_retry_when_the_wait_would_pass_the_deadline() -> None:
    assert _delay(RateLimited("429", retry_after_s=5.0), remaining=4.0) is None


def test_retry_after_header_forms() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "3"}) == 0.25
    assert retry_after_seconds({"Retry-After": "Wed, 01 Jan 2025 12:00:07 GMT"}, now=now) == 7.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "-4"}) == 0.0
