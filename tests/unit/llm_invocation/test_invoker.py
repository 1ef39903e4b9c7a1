"""The invoker: retries, the circuit breaker, the deadline, cancellation — without a network."""

import asyncio
import random

import pytest

from contracts.llm import FinishReason
from services.llm_invocation.completion import Completion
from services.llm_invocation.invoker import Failure, Invoker
from services.llm_invocation.providers.provider_errors import (
    BadResponse,
    ConnectionFailed,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from services.llm_invocation.providers.stream_events import StreamFinished, TextDelta
from services.llm_invocation.resilience.circuit_breakers import ProviderCircuitBreakers
from services.llm_invocation.resilience.rate_limits import ProviderRateLimiter, RateLimitConfig
from services.llm_invocation.resilience.retry_policy import RetryPolicy
from services.runtime.retry import Backoff
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.scripted_provider import HANG, ScriptedProvider, answer

pytestmark = pytest.mark.unit

FAST_RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(initial_s=0.001, max_s=0.002))


def _invoker(provider: ScriptedProvider, **kwargs: object) -> Invoker:
    options: dict[str, object] = {"retry": FAST_RETRY, "rng": random.Random(0)}
    options.update(kwargs)
    return Invoker(provider, **options)  # type: ignore[arg-type]


class Texts(list[str]):
    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def __call__(self, text: str) -> None:
        self.append(text)
        self.arrived.set()


async def test_a_completion_streams_its_text() -> None:
    texts = Texts()
    outcome = await _invoker(ScriptedProvider()).invoke(llm_request(), texts)
    assert isinstance(outcome, Completion)
    assert outcome.content == "Hello world"
    assert texts == ["Hello", " world"]


async def test_transient_failures_are_retried_until_success() -> None:
    provider = ScriptedProvider(ProviderUnavailable("500"), RateLimited("429"))
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert isinstance(outcome, Completion)
    assert provider.calls == 3


async def test_retries_are_bounded_and_the_failure_is_retryable() -> None:
    provider = ScriptedProvider(default=ConnectionFailed("refused"))
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert outcome == Failure("connection_error", "refused (attempt 3)", True)
    assert provider.calls == 3


async def test_a_rejected_request_is_not_retried() -> None:
    provider = ScriptedProvider(RequestRejected("HTTP 401", status_code=401))
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("auth_error", False)
    assert provider.calls == 1


async def test_a_failure_after_text_was_streamed_is_not_retried() -> None:
    provider = ScriptedProvider([TextDelta("partial"), ConnectionFailed("dropped")])
    texts = Texts()
    outcome = await _invoker(provider).invoke(llm_request(), texts)
    assert outcome == Failure("connection_error", "dropped", True)
    assert texts == ["partial"]
    assert provider.calls == 1


async def test_a_bad_response_fails_without_retry() -> None:
    provider = ScriptedProvider([TextDelta("x")])  # ends without a finish reason
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("bad_response", False)


async def test_the_deadline_bounds_the_whole_invocation() -> None:
    provider = ScriptedProvider([HANG])
    outcome = await _invoker(provider, deadline_s=0.05).invoke(llm_request(), Texts())
    assert outcome == Failure("deadline_exceeded", "no result within the 0.05 s deadline", True)
    assert provider.closed_streams == 1


async def test_the_breaker_opens_and_then_fails_fast() -> None:
    provider = ScriptedProvider(default=ProviderUnavailable("500"))
    breakers = ProviderCircuitBreakers(threshold=2, ttl_s=60)
    invoker = _invoker(provider, breakers=breakers, retry=RetryPolicy(max_attempts=1))
    for _ in range(2):
        assert (await invoker.invoke(llm_request(), Texts())).error_class == "provider_error"  # type: ignore[union-attr]
    assert breakers.state("scripted", "scripted-model") == "opened"
    outcome = await invoker.invoke(llm_request(), Texts())
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("circuit_open", True)
    assert provider.calls == 2  # failed fast: the provider was not called


async def test_rate_limits_and_rejections_do_not_open_the_breaker() -> None:
    provider = ScriptedProvider(default=RateLimited("429"))
    breakers = ProviderCircuitBreakers(threshold=2, ttl_s=60)
    invoker = _invoker(provider, breakers=breakers, retry=RetryPolicy(max_attempts=1))
    for _ in range(3):
        await invoker.invoke(llm_request(), Texts())
    assert breakers.state("scripted", "scripted-model") == "closed"


async def test_the_breaker_is_per_model() -> None:
    provider = ScriptedProvider(ProviderUnavailable("500"), ProviderUnavailable("500"))
    breakers = ProviderCircuitBreakers(threshold=2, ttl_s=60)
    invoker = _invoker(provider, breakers=breakers, retry=RetryPolicy(max_attempts=1))
    for _ in range(2):
        await invoker.invoke(llm_request(model="big"), Texts())
    assert breakers.state("scripted", "big") == "opened"
    assert isinstance(await invoker.invoke(llm_request(model="small"), Texts()), Completion)


async def test_half_open_admits_one_trial_and_closes_on_success() -> None:
    gate = asyncio.Event()

    class SlowTrial(ScriptedProvider):
        async def stream(self, request):  # type: ignore[no-untyped-def]
            await gate.wait()
            async for event in super().stream(request):
                yield event

    provider = SlowTrial(ProviderUnavailable("500"))
    breakers = ProviderCircuitBreakers(threshold=1, ttl_s=0.05)
    invoker = _invoker(provider, breakers=breakers, retry=RetryPolicy(max_attempts=1))
    gate.set()
    await invoker.invoke(llm_request(), Texts())
    assert breakers.state("scripted", "scripted-model") == "opened"
    await asyncio.sleep(0.1)
    gate.clear()
    trial = asyncio.create_task(invoker.invoke(llm_request(), Texts()))
    await asyncio.sleep(0.01)
    other = await invoker.invoke(llm_request(), Texts())  # while the trial runs
    assert isinstance(other, Failure)
    assert other.error_class == "circuit_open"
    gate.set()
    assert isinstance(await trial, Completion)
    assert breakers.state("scripted", "scripted-model") == "closed"


async def test_a_failing_delta_sink_does_not_count_against_the_provider() -> None:
    breakers = ProviderCircuitBreakers(threshold=1, ttl_s=60)
    invoker = _invoker(ScriptedProvider(), breakers=breakers)

    async def broken_sink(text: str) -> None:
        raise OSError("broker down")

    with pytest.raises(OSError, match="broker down"):
        await invoker.invoke(llm_request(), broken_sink)
    assert breakers.state("scripted", "scripted-model") == "closed"


async def test_cancellation_closes_the_stream() -> None:
    provider = ScriptedProvider([TextDelta("a"), HANG])
    texts = Texts()
    task = asyncio.create_task(_invoker(provider).invoke(llm_request(), texts))
    await asyncio.wait_for(texts.arrived.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert provider.closed_streams == 1


async def test_content_over_the_limit_stops_the_stream() -> None:
    from contracts.limits import MAX_CONTENT_LENGTH

    big = [TextDelta("x" * 4000) for _ in range(MAX_CONTENT_LENGTH // 4000 + 2)]
    provider = ScriptedProvider([*big, HANG])  # would hang if the stream were read further
    outcome = await asyncio.wait_for(_invoker(provider).invoke(llm_request(), Texts()), 2)
    assert isinstance(outcome, Completion)
    assert len(outcome.content) == MAX_CONTENT_LENGTH
    assert outcome.finish_reason is FinishReason.LENGTH


async def test_usage_from_the_provider_is_reported() -> None:
    outcome = await _invoker(ScriptedProvider(answer())).invoke(llm_request(), Texts())
    assert isinstance(outcome, Completion)
    assert outcome.usage.total_tokens == 3


async def test_tool_calls_only_do_not_count_as_streamed() -> None:
    from services.llm_invocation.providers.stream_events import ToolCallDelta

    provider = ScriptedProvider(
        [ToolCallDelta(index=0, id="c", name="f", arguments="{"), ConnectionFailed("dropped")],
        [
            ToolCallDelta(index=0, id="c", name="f", arguments="{}"),
            StreamFinished(FinishReason.TOOL_CALLS),
        ],
    )
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert isinstance(outcome, Completion)
    assert outcome.tool_calls[0].arguments == "{}"
    assert provider.calls == 2


async def test_bad_response_on_the_first_attempt_is_final() -> None:
    provider = ScriptedProvider(BadResponse("garbage"))
    outcome = await _invoker(provider).invoke(llm_request(), Texts())
    assert outcome == Failure("bad_response", "garbage", False)


async def test_an_open_circuit_fails_at_once_without_waiting_for_the_rate_limit() -> None:
    # docs: "while open every invocation fails at once". The rate limit was taken before the
    # breaker was asked: with one request a minute, an invocation waited out a slot (counting
    # against its deadline) only to be refused by the open circuit, and used the slot up.
    provider = ScriptedProvider(default=ProviderUnavailable("500"))
    breakers = ProviderCircuitBreakers(threshold=1, ttl_s=60, first_trial_s=60)
    limiter = ProviderRateLimiter(RateLimitConfig(requests_per_minute=1, burst_seconds=1))
    invoker = _invoker(
        provider, breakers=breakers, limiter=limiter, retry=RetryPolicy(max_attempts=1)
    )
    opened = await invoker.invoke(llm_request(), Texts())
    assert isinstance(opened, Failure)
    assert breakers.state("scripted", "scripted-model") == "opened"

    async with asyncio.timeout(1):
        outcome = await invoker.invoke(llm_request(), Texts())
    assert isinstance(outcome, Failure)
    assert outcome.error_class == "circuit_open"
    assert provider.calls == 1


async def test_a_deadline_spent_waiting_for_the_rate_limit_is_no_outcome_of_the_provider() -> None:
    # purgatory counts an exception it is told to ignore as a success: with the rate limit
    # taken inside the guard, a deadline that passed while waiting for a slot (the provider
    # never called) reset the consecutive failures, so the circuit never opened.
    provider = ScriptedProvider(default=ProviderUnavailable("500"))
    breakers = ProviderCircuitBreakers(threshold=2, ttl_s=60, first_trial_s=60)
    once = RetryPolicy(max_attempts=1)
    limiter = ProviderRateLimiter(RateLimitConfig(requests_per_minute=60, burst_seconds=1))
    limited = _invoker(provider, breakers=breakers, limiter=limiter, retry=once, deadline_s=0.3)
    unlimited = _invoker(provider, breakers=breakers, retry=once)

    first = await limited.invoke(llm_request(), Texts())  # fault 1; uses the only slot
    assert isinstance(first, Failure)
    assert first.error_class == "provider_error"
    waited = await limited.invoke(llm_request(), Texts())  # its deadline passes in the limiter
    assert isinstance(waited, Failure)
    assert waited.error_class == "deadline_exceeded"
    assert provider.calls == 1
    await unlimited.invoke(llm_request(), Texts())  # fault 2: the threshold
    assert breakers.state("scripted", "scripted-model") == "opened"


async def test_a_trial_cut_off_by_the_deadline_leaves_the_circuit_half_open() -> None:
    # A cancelled block says nothing about the provider: counted as a success, it closed the
    # circuit on a trial that never answered, and every waiting invocation went on to it.
    provider = ScriptedProvider(ProviderUnavailable("500"), [HANG], default=answer("ok"))
    breakers = ProviderCircuitBreakers(threshold=1, ttl_s=60, first_trial_s=0.05)
    invoker = _invoker(
        provider, breakers=breakers, retry=RetryPolicy(max_attempts=1), deadline_s=0.3
    )
    await invoker.invoke(llm_request(), Texts())
    assert breakers.state("scripted", "scripted-model") == "opened"
    await asyncio.sleep(0.1)  # past the first trial's wait (50 ms)
    cut = await invoker.invoke(llm_request(), Texts())  # the trial hangs until the deadline
    assert isinstance(cut, Failure)
    assert cut.error_class == "deadline_exceeded"
    assert breakers.state("scripted", "scripted-model") == "half-opened"
    assert isinstance(await invoker.invoke(llm_request(), Texts()), Completion)  # a new trial
    assert breakers.state("scripted", "scripted-model") == "closed"
