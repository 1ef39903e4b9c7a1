"""The OpenAI-compatible provider over real HTTP against a local server speaking the protocol:
streams, tool calls, 429 + Retry-After, 5xx and the breaker, timeouts, malformed SSE."""

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from contracts.agents import AgentType, MessageRole
from contracts.llm import ChatMessage, FinishReason, LLMCompleted, ToolCall
from services.llm_invocation.completion import Completion
from services.llm_invocation.invoker import Failure, Invoker, Outcome
from services.llm_invocation.providers.openai_provider import (
    OpenAICompatibleProvider,
    OpenAIProviderConfig,
)
from services.llm_invocation.resilience.circuit_breakers import ProviderCircuitBreakers
from services.llm_invocation.resilience.retry_policy import RetryPolicy
from services.runtime.retry import Backoff
from tests.support.llm_invocation.requests import llm_request
from tests.support.openai_server import (
    FakeOpenAIServer,
    Reply,
    dropped_stream,
    finished_then_dropped,
    hang,
    malformed_sse,
    not_sse,
    parallel_tool_calls_stream,
    status,
    text_stream,
    tool_call_stream,
)
from tests.support.recursion import default_recursion_limit

pytestmark = pytest.mark.integration

FAST_RETRY = RetryPolicy(max_attempts=3, backoff=Backoff(initial_s=0.01, max_s=0.02))


@pytest.fixture
async def provider(openai_server: FakeOpenAIServer) -> AsyncIterator[OpenAICompatibleProvider]:
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(
            base_url=openai_server.base_url,
            model="fake-model",
            api_key=SecretStr("sk-test-key"),
            read_timeout_s=0.5,
            connect_timeout_s=0.5,
        )
    )
    yield provider
    await provider.aclose()


def _invoker(provider: OpenAICompatibleProvider, **options: object) -> Invoker:
    settings: dict[str, object] = {"retry": FAST_RETRY, "rng": random.Random(0)}
    settings.update(options)
    return Invoker(provider, **settings)  # type: ignore[arg-type]


async def _invoke(invoker: Invoker, **request: object) -> tuple[Outcome, list[str]]:
    texts: list[str] = []

    async def collect(text: str) -> None:
        texts.append(text)

    outcome = await invoker.invoke(llm_request(**request), collect)  # type: ignore[arg-type]
    return outcome, texts


async def test_a_normal_stream(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(text_stream("The answer is forty-two.", chunk_chars=4, usage=(12, 6)))
    outcome, texts = await _invoke(_invoker(provider), text="What is the answer?", max_tokens=50)

    assert isinstance(outcome, Completion)
    assert outcome.content == "The answer is forty-two."
    assert texts == ["The ", "answ", "er i", "s fo", "rty-", "two."]
    assert outcome.finish_reason is FinishReason.STOP
    assert (outcome.usage.prompt_tokens, outcome.usage.completion_tokens) == (12, 6)
    (sent,) = openai_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    assert sent.json is not None
    assert sent.json["model"] == "fake-model"
    assert sent.json["stream"] is True
    assert sent.json["stream_options"] == {"include_usage": True}
    assert sent.json["max_tokens"] == 50
    assert sent.json["messages"][-1] == {"role": "user", "content": "What is the answer?"}


async def test_connections_are_reused_after_a_finished_stream(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    invoker = _invoker(provider)
    for _ in range(3):
        outcome, _ = await _invoke(invoker)  # one session: always the same pool
        assert isinstance(outcome, Completion)
    assert openai_server.calls == 3
    assert openai_server.connections == 1


async def test_the_request_model_overrides_the_default(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    await _invoke(_invoker(provider), model="bigger-model")
    assert openai_server.requests[0].json["model"] == "bigger-model"  # type: ignore[index]


async def test_a_tool_call(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    arguments = json.dumps({"target": "coder", "reason": "code was asked for"})
    openai_server.script(
        tool_call_stream("switch_agent", arguments, call_id="call_42", fragments=4)
    )
    outcome, texts = await _invoke(
        _invoker(provider),
        text="Implement it",
        agent=AgentType.ORCHESTRATOR,
        targets=(AgentType.CODER,),
    )
    assert isinstance(outcome, Completion)
    assert outcome.tool_calls == [ToolCall(id="call_42", name="switch_agent", arguments=arguments)]
    assert outcome.finish_reason is FinishReason.TOOL_CALLS
    assert outcome.content == ""
    assert texts == []
    tools = openai_server.requests[0].json["tools"]  # type: ignore[index]
    assert tools[0]["type"] == "function"
    assert tools[0]["function"]["name"] == "switch_agent"
    assert tools[0]["function"]["parameters"]["properties"]["target"]["enum"] == ["coder"]


async def test_parallel_tool_calls_are_assembled_per_index(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    first, second = json.dumps({"path": "a.py"}), json.dumps({"path": "b.py"})
    openai_server.script(
        parallel_tool_calls_stream([("read_file", first), ("read_file", second)], text="Reading.")
    )
    outcome, _ = await _invoke(_invoker(provider), text="read file a.py and b.py")
    assert isinstance(outcome, Completion)
    assert outcome.tool_calls == [
        ToolCall(id="call_fake_0", name="read_file", arguments=first),
        ToolCall(id="call_fake_1", name="read_file", arguments=second),
    ]
    assert outcome.content == "Reading."
    assert outcome.finish_reason is FinishReason.TOOL_CALLS


async def test_tool_calls_and_results_go_back_in_the_chat_completions_shape(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    request = llm_request("read file a.py")
    calls = [ToolCall(id="call_1", name="read_file", arguments='{"path": "a.py"}')]
    messages = [
        *request.messages,
        ChatMessage(role=MessageRole.ASSISTANT, content="", name="coder", tool_calls=calls),
        ChatMessage(role=MessageRole.TOOL, content="x = 1", tool_call_id="call_1"),
    ]
    outcome = await _invoker(provider).invoke(
        request.model_copy(update={"messages": messages}), _ignore
    )
    assert isinstance(outcome, Completion)
    sent = openai_server.requests[0].json
    assert sent is not None
    assert sent["messages"][-2:] == [
        {
            "role": "assistant",
            "content": None,
            "name": "coder",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "a.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "x = 1"},
    ]


async def _ignore(text: str) -> None:
    return None


async def test_429_with_retry_after_is_honoured(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(status(429, retry_after="1"), text_stream("after the wait"))
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Completion)
    assert outcome.content == "after the wait"
    first, second = openai_server.requests
    assert second.received_at - first.received_at >= 1.0  # Retry-After: 1, not the 10 ms backoff


async def test_429_with_a_retry_after_beyond_the_bound_fails_retryable_at_once(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(status(429, retry_after="3600"))
    started = time.monotonic()
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("rate_limited", True)
    assert openai_server.calls == 1
    assert time.monotonic() - started < 1.0


async def test_500s_open_the_breaker_then_a_half_open_trial_closes_it(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    breakers = ProviderCircuitBreakers(threshold=3, ttl_s=0.5)
    invoker = _invoker(provider, breakers=breakers)
    circuit = breakers.circuit_name(provider.name, "fake-model")
    opened_before = (
        REGISTRY.get_sample_value(
            "llm_circuit_breaker_state_changes_total", {"circuit": circuit, "state": "opened"}
        )
        or 0.0
    )
    openai_server.script(*(status(500) for _ in range(3)))

    outcome, _ = await _invoke(invoker)  # three attempts, three 500s: the third opens it
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("provider_error", True)
    assert openai_server.calls == 3
    assert breakers.state(provider.name, "fake-model") == "opened"
    assert (
        REGISTRY.get_sample_value(
            "llm_circuit_breaker_state_changes_total", {"circuit": circuit, "state": "opened"}
        )
        == opened_before + 1
    )

    for _ in range(5):  # open: fail fast, the server is not called
        outcome, _ = await _invoke(invoker)
        assert isinstance(outcome, Failure)
        assert (outcome.error_class, outcome.retryable) == ("circuit_open", True)
    assert openai_server.calls == 3

    await asyncio.sleep(0.6)  # past the TTL: the next call is the half-open trial
    outcome, _ = await _invoke(invoker)
    assert isinstance(outcome, Completion)
    assert openai_server.calls == 4
    assert breakers.state(provider.name, "fake-model") == "closed"


async def test_a_failed_half_open_trial_opens_the_breaker_again(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    breakers = ProviderCircuitBreakers(threshold=1, ttl_s=0.3)
    invoker = _invoker(provider, breakers=breakers, retry=RetryPolicy(max_attempts=1))
    openai_server.script(status(503), status(503))
    await _invoke(invoker)
    await asyncio.sleep(0.4)
    outcome, _ = await _invoke(invoker)  # the trial fails
    assert isinstance(outcome, Failure)
    assert outcome.error_class == "provider_error"
    assert breakers.state(provider.name, "fake-model") == "opened"
    outcome, _ = await _invoke(invoker)
    assert isinstance(outcome, Failure)
    assert outcome.error_class == "circuit_open"
    assert openai_server.calls == 2


async def test_a_silent_stream_times_out_and_the_connection_is_closed(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(hang(), hang(before_headers=True), hang())
    started = time.monotonic()
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("timeout", True)
    assert openai_server.calls == 3  # each attempt timed out after read_timeout_s=0.5
    assert 1.5 <= time.monotonic() - started < 5
    await openai_server.wait_for(lambda server: server.disconnects == 3)


async def test_the_deadline_ends_a_slow_invocation(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(text_stream("slow " * 20, chunk_chars=5, chunk_delay_s=0.2))
    outcome, texts = await _invoke(_invoker(provider, deadline_s=0.5))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("deadline_exceeded", True)
    assert 0 < len(texts) < 20
    await openai_server.wait_for(lambda server: server.disconnects == 1)


@pytest.mark.parametrize("reply", [malformed_sse(), not_sse()], ids=["bad-json", "no-sse-framing"])
async def test_malformed_sse_is_a_bad_response_and_not_retried(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, reply: object
) -> None:
    openai_server.script(reply)  # type: ignore[arg-type]
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("bad_response", False)
    assert openai_server.calls == 1


async def test_a_stream_dropped_after_text_fails_without_retry(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(dropped_stream("half an ans"))
    outcome, texts = await _invoke(_invoker(provider))
    assert texts == ["half an ans"]
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("connection_error", True)
    assert openai_server.calls == 1


@pytest.mark.parametrize(
    ("code", "error_class"),
    [(400, "invalid_request"), (401, "auth_error"), (404, "invalid_request")],
)
async def test_client_errors_are_not_retried(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, code: int, error_class: str
) -> None:
    openai_server.script(status(code, message="no such model"))
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == (error_class, False)
    assert "no such model" in outcome.message
    assert openai_server.calls == 1


async def test_a_refused_connection_is_retried_then_fails_retryable(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    await openai_server.stop()
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("connection_error", True)
    assert "attempt 3" in outcome.message


async def test_a_cancelled_invocation_closes_the_stream_at_once(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(text_stream("tick " * 100, chunk_chars=5, chunk_delay_s=0.05))
    arrived = asyncio.Event()

    async def collect(text: str) -> None:
        arrived.set()

    task = asyncio.create_task(_invoker(provider).invoke(llm_request(), collect))
    await asyncio.wait_for(arrived.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await openai_server.wait_for(lambda server: server.disconnects == 1)


async def test_hundreds_of_concurrent_streams(openai_server: FakeOpenAIServer) -> None:
    # Timeouts of a real deployment, not the 0.5 s of the fixture: this is about concurrency.
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(base_url=openai_server.base_url, model="fake-model")
    )
    openai_server.default = text_stream("concurrent answer", latency_s=0.2)
    invoker = _invoker(provider)
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(_invoke(invoker, session_id=f"s-{i}") for i in range(300))
        )
    finally:
        await provider.aclose()
    failures = [outcome for outcome, _ in outcomes if not isinstance(outcome, Completion)]
    assert failures == []
    assert openai_server.calls == 300
    assert time.monotonic() - started < 10  # concurrent: far below 300 x 0.2 s


async def _refused(
    provider: OpenAICompatibleProvider, openai_server: FakeOpenAIServer, message: str
) -> Failure:
    """The failure of one call the provider answers with a 401 carrying `message`."""
    openai_server.script(status(401, message=message))
    try:
        outcome, _ = await _invoke(_invoker(provider))
    finally:
        await provider.aclose()
    assert isinstance(outcome, Failure)
    return outcome


async def _streamed_failure(openai_server: FakeOpenAIServer, key: str, event: str) -> Failure:
    """The failure of one call (no retry) whose 200 stream is `event`, with `key` configured."""
    provider = _keyed_provider(openai_server, key)
    openai_server.script(Reply(events=[event]))
    try:
        outcome, _ = await _invoke(_invoker(provider, retry=RetryPolicy(max_attempts=1)))
    finally:
        await provider.aclose()
    assert isinstance(outcome, Failure)
    return outcome


def _keyed_provider(openai_server: FakeOpenAIServer, key: str) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        OpenAIProviderConfig(
            base_url=openai_server.base_url, model="fake-model", api_key=SecretStr(key)
        )
    )


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-Canary0123456789abcdef",  # OpenAI's shape: the shared scrubber knows it
        "proxy-7f3e9a1c5b2d4e6f8a0b",  # a proxy's own shape: only the configured key masks it
    ],
)
async def test_a_provider_error_never_carries_the_api_key(
    openai_server: FakeOpenAIServer, key: str
) -> None:
    echo = f"Incorrect API key provided: {key}. Request headers: Authorization: Bearer {key}"
    outcome = await _refused(_keyed_provider(openai_server, key), openai_server, echo)
    assert outcome.error_class == "auth_error"
    assert key not in outcome.message
    assert "Incorrect API key provided: [REDACTED:" in outcome.message
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {key}"


async def test_an_error_inside_the_stream_never_carries_the_api_key(
    openai_server: FakeOpenAIServer,
) -> None:
    key = "proxy-7f3e9a1c5b2d4e6f8a0b"
    error = json.dumps({"error": {"message": f"upstream refused key {key}"}})
    outcome = await _streamed_failure(openai_server, key, f"data: {error}\n\n")
    assert key not in outcome.message
    assert "[REDACTED:api_key]" in outcome.message


async def test_a_key_the_error_body_cut_goes_through_is_masked_too(
    openai_server: FakeOpenAIServer,
) -> None:
    # The error body is kept to its first 300 characters: here the key straddles that cut.
    key = "prx-Zq9VtW3cL8xK2pR7mN4b"
    before_message = '{"error": {"message": "'  # what `status` writes before the message
    filler = "y" * (300 - len(before_message) - 8)  # 8 characters of the key before the cut
    outcome = await _refused(
        _keyed_provider(openai_server, key), openai_server, f"{filler}{key} and more"
    )
    assert key[:4] not in outcome.message
    assert outcome.message.endswith("[REDACTED:api_key]")


async def test_the_password_of_credentials_in_the_base_url_is_masked_too(
    openai_server: FakeOpenAIServer,
) -> None:
    password = "Prox1Pass-7f3e9a1c"
    base_url = openai_server.base_url.replace("://", f"://gateway-user:{password}@", 1)
    provider = OpenAICompatibleProvider(OpenAIProviderConfig(base_url=base_url, model="m"))
    outcome = await _refused(provider, openai_server, f"proxy refused gateway-user/{password}")
    assert password not in outcome.message
    assert "[REDACTED:api_key]" in outcome.message


@pytest.mark.parametrize(
    "key", ["sk-proj-Canary0123456789abcdefWXYZ", "sk-Canary0123456789abcdefWXYZ"]
)
async def test_the_key_openai_echoes_starred_out_is_masked_whole(
    openai_server: FakeOpenAIServer, key: str
) -> None:
    # OpenAI's 401 quotes the key sent with its middle starred out; the scrubber's `sk-`
    # pattern needs 8 characters before the stars, so the key's start and end were kept.
    starred = f"{key[:8]}{'*' * (len(key) - 12)}{key[-4:]}"
    outcome = await _refused(
        _keyed_provider(openai_server, key),
        openai_server,
        f"Incorrect API key provided: {starred}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    )
    assert key[:8] not in outcome.message
    assert key[-4:] not in outcome.message
    assert "Incorrect API key provided: [REDACTED:api_key]. You can find" in outcome.message


async def test_a_key_partly_in_a_known_shape_is_masked_whole(
    openai_server: FakeOpenAIServer,
) -> None:
    # `sk-team` looks like a key the scrubber knows; the rest of it must not survive that.
    key = "sk-teamalpha.Z9Y8X7W6V5U4T3S2Q1"
    outcome = await _refused(
        _keyed_provider(openai_server, key), openai_server, f"Incorrect API key provided: {key}."
    )
    assert "Z9Y8X7W6" not in outcome.message
    assert "Incorrect API key provided: [REDACTED:api_key]." in outcome.message


async def test_a_key_cut_inside_a_malformed_chunk_is_masked(
    openai_server: FakeOpenAIServer,
) -> None:
    # The malformed data is quoted to its first 80 characters: the key straddles that cut.
    key = "proxykey-7f3a9c2e1b5d4f6a8c0e"
    line = "x" * 60 + key + " and the rest"
    outcome = await _streamed_failure(openai_server, key, f"data: {line}\n\n")
    assert outcome.error_class == "bad_response"
    assert key[:8] not in outcome.message
    assert "[REDACTED:api_key]" in outcome.message


async def test_a_percent_encoded_password_is_masked_as_it_is_sent(
    openai_server: FakeOpenAIServer,
) -> None:
    base_url = openai_server.base_url.replace("://", "://bob:p%40ss-Secr3tPW@", 1)
    provider = OpenAICompatibleProvider(OpenAIProviderConfig(base_url=base_url, model="m"))
    outcome = await _refused(provider, openai_server, "credentials bob:p@ss-Secr3tPW refused")
    assert "Secr3tPW" not in outcome.message
    assert "[REDACTED:api_key]" in outcome.message


async def test_the_basic_credentials_as_sent_are_masked_when_a_proxy_echoes_the_header(
    openai_server: FakeOpenAIServer,
) -> None:
    # "Incorrect API key provided: Basic <token>": the token is base64 of user:password.
    base_url = openai_server.base_url.replace("://", "://bob:p%40ss-Secr3tPW@", 1)
    provider = OpenAICompatibleProvider(OpenAIProviderConfig(base_url=base_url, model="m"))
    sent = base64.b64encode(b"bob:p@ss-Secr3tPW").decode()
    outcome = await _refused(provider, openai_server, f"Incorrect API key provided: Basic {sent}")
    assert openai_server.requests[0].headers["authorization"] == f"Basic {sent}"
    assert sent[:-1] not in outcome.message  # "=" padding aside
    assert "[REDACTED:api_key]" in outcome.message


async def test_an_answer_whose_connection_drops_after_its_finish_reason_is_whole(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.script(finished_then_dropped("a whole answer"))
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Completion)
    assert outcome.content == "a whole answer"
    assert outcome.finish_reason is FinishReason.STOP
    assert openai_server.calls == 1


def _tool_call_fragment(**call: object) -> Reply:
    first = {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    return Reply(
        events=[
            f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': first}]})}\n\n",
            "data: "
            + json.dumps(
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
            )
            + "\n\n",
            "data: [DONE]\n\n",
        ]
    )


@pytest.mark.parametrize(
    "call",
    [
        {"id": "call_1", "function": {"name": "switch_agent", "arguments": {"target": "coder"}}},
        {"id": "call_1", "function": {"name": 123, "arguments": "{}"}},
        {"id": 77, "function": {"name": "switch_agent", "arguments": "{}"}},
    ],
    ids=["arguments-an-object", "name-a-number", "id-a-number"],
)
async def test_a_tool_call_field_of_the_wrong_type_is_a_bad_response(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, call: dict[str, object]
) -> None:
    # Before, the fragments were joined as they came and the TypeError escaped the invoker:
    # the request was dead-lettered without an LLMFailed, and its turn never ended.
    openai_server.script(_tool_call_fragment(**call))
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("bad_response", False)
    assert "is not a string" in outcome.message
    assert openai_server.calls == 1


async def test_a_lone_surrogate_in_the_text_becomes_a_replacement_character(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    # JSON can escape half an emoji ("\ud83d"); the decoded string cannot be encoded as
    # UTF-8, so no delta or result carrying it validated: the request was dead-lettered
    # without any result and its turn never ended.
    text = json.dumps("bad \ud83d half, a whole \ud83d\ude00")[1:-1]
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    openai_server.script(
        Reply(
            events=[
                'data: {"choices": [{"index": 0, "delta": {"content": "' + text + '"}}]}\n\n',
                "data: "
                + json.dumps(
                    {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                )
                + "\n\n",
                "data: [DONE]\n\n",
            ]
        ),
        Reply(events=['data: {"error": "overloaded \\udc00"}\n\n']),
    )
    outcome, texts = await _invoke(_invoker(provider))
    assert isinstance(outcome, Completion)
    assert outcome.content == "bad \ufffd half, a whole \U0001f600"
    assert texts == [outcome.content]
    LLMCompleted(
        id="r",
        session_id="s",
        tenant_id="t",
        invocation_id="i",
        turn_id="t",
        step=0,
        agent=AgentType.ASK,
        content=outcome.content,
        finish_reason=outcome.finish_reason,
        provider="p",
        model="m",
    )

    failed, _ = await _invoke(_invoker(provider, retry=RetryPolicy(max_attempts=1)))
    assert isinstance(failed, Failure)
    assert "overloaded \ufffd" in failed.message
    failed.message.encode("utf-8")


async def test_the_connections_never_exceed_llm_max_connections(
    openai_server: FakeOpenAIServer,
) -> None:
    # LLM_MAX_CONNECTIONS is the total over all pools (docs: "HTTP connections:
    # llm_max_connections over llm_connection_pools pools"). With fewer connections than
    # pools, each pool got one anyway: 8 sessions made 8 connections against a limit of 4.
    provider = OpenAICompatibleProvider(
        OpenAIProviderConfig(
            base_url=openai_server.base_url,
            model="fake-model",
            max_connections=4,
            connection_pools=64,
        )
    )
    openai_server.reset(default=text_stream("pooled", latency_s=0.3))
    try:
        invoker = _invoker(provider)
        outcomes = await asyncio.gather(
            *(
                invoker.invoke(llm_request(session_id=f"session-{index}"), _ignore)
                for index in range(8)
            )
        )
    finally:
        await provider.aclose()
    assert all(isinstance(outcome, Completion) for outcome in outcomes)
    assert openai_server.calls == 8
    assert openai_server.connections <= 4


async def test_a_tool_call_index_out_of_range_is_a_bad_response(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    # JSON's 1e999 decodes to inf, and int(inf) raises OverflowError, which escaped the
    # invoker: the request was dead-lettered without any LLMFailed, its turn never ending.
    first = '{"index": 1e999, "id": "c", "function": {"name": "switch_agent", "arguments": ""}}'
    openai_server.script(
        Reply(
            events=[
                'data: {"choices": [{"index": 0, "delta": {"tool_calls": [' + first + "]}}]}\n\n",
                "data: [DONE]\n\n",
            ]
        )
    )
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("bad_response", False)


@pytest.mark.parametrize("value", ["7" * 5_000, "[" * 5_000 + "]" * 5_000])
async def test_a_chunk_json_cannot_hold_is_a_bad_response(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, value: str
) -> None:
    # json.loads raises a plain ValueError (not JSONDecodeError) for a 5,000-digit integer,
    # and RecursionError for deep nesting: each escaped the invoker, a dead letter without
    # any LLMFailed.
    chunk = '{"choices": [], "usage": {"prompt_tokens": ' + value + "}}"
    openai_server.script(Reply(events=[f"data: {chunk}\n\n", "data: [DONE]\n\n"]))
    with default_recursion_limit():
        outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.retryable) == ("bad_response", False)


async def test_usage_without_a_total_is_totalled_from_its_counts(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    # The token rate limit settles on the total: 0 refunded the whole reservation.
    usage = '{"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6}}'
    events = [*text_stream("An answer.", usage=None).events]
    events.insert(-1, f"data: {usage}\n\n")
    openai_server.script(Reply(events=events))
    outcome, _ = await _invoke(_invoker(provider))
    assert isinstance(outcome, Completion)
    assert outcome.usage.model_dump() == {
        "prompt_tokens": 12,
        "completion_tokens": 6,
        "total_tokens": 18,
    }
