"""The invocation's span carries the GenAI attributes; the first text observes the time to
first token once."""

import random

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from contracts.llm import FinishReason, Usage
from services.llm_invocation.completion import Completion
from services.llm_invocation.invoker import Failure, Invoker
from services.llm_invocation.providers.provider_errors import RequestRejected
from services.llm_invocation.providers.stream_events import StreamFinished, TextDelta
from services.llm_invocation.resilience.retry_policy import RetryPolicy
from tests.support.llm_invocation.requests import llm_request
from tests.support.llm_invocation.scripted_provider import ScriptedProvider

pytestmark = pytest.mark.unit


def traced_invoker(provider: ScriptedProvider) -> tuple[Invoker, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    invoker = Invoker(
        provider,
        retry=RetryPolicy(max_attempts=1),
        rng=random.Random(0),
        tracer=tracer_provider.get_tracer("t"),
    )
    return invoker, exporter


async def ignore(text: str) -> None:
    pass


def first_token_count(model: str) -> float:
    value = REGISTRY.get_sample_value("llm_time_to_first_token_seconds_count", {"model": model})
    return value or 0.0


async def test_a_completion_has_the_gen_ai_attributes_and_one_first_token() -> None:
    usage = Usage(prompt_tokens=30, completion_tokens=7, total_tokens=37)
    provider = ScriptedProvider(
        [TextDelta("Hel"), TextDelta("lo"), StreamFinished(FinishReason.STOP, usage)]
    )
    invoker, exporter = traced_invoker(provider)
    before = first_token_count("gpt-test")

    outcome = await invoker.invoke(llm_request(model="gpt-test"), ignore)

    assert isinstance(outcome, Completion)
    [span] = exporter.get_finished_spans()
    assert span.name == "chat gpt-test"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.provider.name"] == "scripted"
    assert attributes["gen_ai.usage.input_tokens"] == 30
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert first_token_count("gpt-test") == before + 1  # two pieces of text, one observation


async def test_a_failure_marks_the_span_with_the_error_class() -> None:
    invoker, exporter = traced_invoker(
        ScriptedProvider(RequestRejected("400 bad request", status_code=400))
    )
    outcome = await invoker.invoke(llm_request(), ignore)
    assert isinstance(outcome, Failure)
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == outcome.error_class
