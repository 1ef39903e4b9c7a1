"""The span of one LLM invocation, with OpenTelemetry's GenAI attributes (`gen_ai.*`).

Named `chat <model>` (kind CLIENT) as the GenAI semantic conventions name a chat call; the
provider's HTTP request spans (opentelemetry-instrumentation-httpx, when traces are exported)
are its children. Attributes are computed only when the span records: without an exporter
it costs the creation of a non-recording span per invocation, nothing per token.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from contracts.llm import LLMRequested
from services.llm_invocation.completion import Completion


@contextmanager
def llm_span(tracer: Tracer, request: LLMRequested, provider: str, model: str) -> Iterator[Span]:
    with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT) as span:
        if span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": provider,
                    "gen_ai.system": provider,  # the attribute's name before semconv 1.37
                    "gen_ai.request.model": model,
                    "gen_ai.agent.name": request.agent.value,
                    "agent_runtime.invocation_id": request.invocation_id,
                    "agent_runtime.turn_id": request.turn_id,
                    "agent_runtime.step": request.step,
                }
            )
            if request.temperature is not None:
                span.set_attribute("gen_ai.request.temperature", request.temperature)
            if request.max_tokens is not None:
                span.set_attribute("gen_ai.request.max_tokens", request.max_tokens)
        yield span


def record_completion(span: Span, model: str, completion: Completion) -> None:
    if span.is_recording():
        span.set_attributes(
            {
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
                "gen_ai.response.finish_reasons": [completion.finish_reason.value],
            }
        )


def record_failure(span: Span, error_class: str, message: str) -> None:
    if span.is_recording():
        span.set_attribute("error.type", error_class)
        span.set_status(Status(StatusCode.ERROR, message[:200]))
