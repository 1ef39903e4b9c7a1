"""OpenAI-compatible chat completions with streaming (SSE) and tool calls, on httpx.

Works with OpenAI, vLLM, Ollama, LM Studio and LiteLLM: they all serve
`POST {base_url}/chat/completions` with `stream: true` and send `data: {chunk}` events ending
with `data: [DONE]`. This module maps HTTP outcomes to `ProviderError`s and chunks to stream
events; retries, the breaker and limits live in the invoker, so the client does no retries.
"""

import base64
import contextlib
import ssl
import zlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import SecretStr

from contracts.agents import MessageRole
from contracts.llm import ChatMessage, FinishReason, LLMRequested, Usage
from services.llm_invocation.providers.provider_errors import (
    BadResponse,
    ConnectionFailed,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)
from services.llm_invocation.providers.retry_after import retry_after_seconds
from services.llm_invocation.providers.sse import SSEDecoder
from services.llm_invocation.providers.stream_events import (
    StreamEvent,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)
from services.runtime.json_text import parse_json
from services.runtime.unicode_text import encodable
from services.runtime.uri_redaction import redact_uri_credentials

_FINISH_REASONS = {reason.value: reason for reason in FinishReason} | {
    "function_call": FinishReason.TOOL_CALLS  # the legacy name some servers still send
}
_ERROR_BODY_CHARS = 300


@dataclass(frozen=True, slots=True)
class OpenAIProviderConfig:
    base_url: str
    model: str
    api_key: SecretStr | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    """Longest silence between two chunks of a stream before the attempt times out."""
    write_timeout_s: float = 10.0
    pool_timeout_s: float = 30.0
    max_connections: int = 512
    """In total, over all pools."""
    connection_pools: int = 64
    """httpx's pool costs CPU per request that grows with the requests it holds (encode/httpx
    #3215): 500 streams in one pool cost ~15-25 ms of CPU each, over 64 pools ~2.5 ms.
    Requests are spread over the pools by session id."""
    include_usage: bool = True
    """Send `stream_options.include_usage` (OpenAI, vLLM, Ollama, LiteLLM accept it)."""
    name: str = "openai-compatible"

    def __repr__(self) -> str:  # the key never reaches logs, even through a repr
        base_url = redact_uri_credentials(self.base_url)
        return f"OpenAIProviderConfig(base_url={base_url!r}, model={self.model!r})"


def _message(message: ChatMessage) -> dict[str, Any]:
    """One prompt message in the chat-completions shape: a `tool` message answers a call by
    its id; an assistant message that called tools lists them (`content` null when empty)."""
    if message.role is MessageRole.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    body: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.name:
        body["name"] = message.name
    if message.tool_calls:
        body["content"] = message.content or None
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return body


class OpenAICompatibleProvider:
    def __init__(
        self, config: OpenAIProviderConfig, *, client: httpx.AsyncClient | None = None
    ) -> None:
        self._config = config
        # What a provider or proxy may quote back in its error text: the key, and the password
        # of credentials in the base URL (sent as Basic authentication).
        password = urlsplit(config.base_url).password or ""
        self._secrets = tuple(
            dict.fromkeys(
                secret
                for secret in (
                    config.api_key.get_secret_value() if config.api_key else "",
                    password,
                    unquote(password),  # what is sent (and quoted back): the decoded form
                    _basic_credentials(config.base_url),
                )
                if secret
            )
        )
        tls = httpx.create_ssl_context()  # one for all pools: loading the CA bundle is slow
        self._clients = (
            [client]
            if client is not None
            else [
                _client(config, size, tls)
                for size in pool_sizes(config.max_connections, config.connection_pools)
            ]
        )

    @property
    def name(self) -> str:
        return self._config.name

    def model_for(self, request: LLMRequested) -> str:
        return request.model or self._config.model

    async def stream(self, request: LLMRequested) -> AsyncGenerator[StreamEvent, None]:
        body = self._body(request)
        try:
            try:
                client = self._clients[zlib.crc32(request.session_id.encode()) % len(self._clients)]
                async with client.stream("POST", "chat/completions", json=body) as response:
                    await _raise_for_status(response)
                    async for event in _events(response):
                        yield event
            except httpx.TimeoutException as error:
                raise ProviderTimeout(
                    f"{type(error).__name__}: the provider did not answer in time"
                ) from error
            except httpx.HTTPError as error:
                # httpx's text names the request (method, URL), never its headers.
                raise ConnectionFailed(f"{type(error).__name__}: {error}") from error
        except ProviderError as error:
            for secret in self._secrets:
                error.mask(secret)
            raise

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    def _body(self, request: LLMRequested) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model_for(request),
            "stream": True,
            "messages": [_message(m) for m in request.messages],
        }
        if self._config.include_usage:
            body["stream_options"] = {"include_usage": True}
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return body


def _basic_credentials(base_url: str) -> str:
    """The token of the `Authorization: Basic <token>` header httpx sends for credentials in
    the base URL, as a proxy that echoes the header quotes it back: base64 of `user:password`,
    which gives the password away to anyone who decodes it. Empty without a password."""
    url = httpx.URL(base_url)
    if not url.password:
        return ""
    return base64.b64encode(f"{url.username}:{url.password}".encode()).decode()


def pool_sizes(max_connections: int, pools: int) -> list[int]:
    """Connections of each pool: `max_connections` in total, never more (a provider that allows
    8 parallel streams gets 8, not one per pool), spread as evenly as the pools allow; fewer
    pools when there are fewer connections than pools."""
    total = max(1, max_connections)
    count = max(1, min(pools, total))
    base, extra = divmod(total, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


def _client(
    config: OpenAIProviderConfig, max_connections: int, tls: ssl.SSLContext
) -> httpx.AsyncClient:
    headers = {"Accept": "text/event-stream"}
    if config.api_key is not None and config.api_key.get_secret_value():
        headers["Authorization"] = f"Bearer {config.api_key.get_secret_value()}"
    return httpx.AsyncClient(
        base_url=config.base_url.rstrip("/") + "/",
        headers=headers,
        verify=tls,
        timeout=httpx.Timeout(
            connect=config.connect_timeout_s,
            read=config.read_timeout_s,
            write=config.write_timeout_s,
            pool=config.pool_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


async def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = (await response.aread())[:_ERROR_BODY_CHARS].decode("utf-8", errors="replace")
    message = f"HTTP {status}: {detail}".strip()
    if status == 429:
        raise RateLimited(message, retry_after_s=retry_after_seconds(response.headers))
    if status >= 500 or status == 408:
        raise ProviderUnavailable(message, retry_after_s=retry_after_seconds(response.headers))
    raise RequestRejected(message, status_code=status)


async def _events(response: httpx.Response) -> AsyncIterator[StreamEvent]:
    decoder = SSEDecoder()
    finish: FinishReason | None = None
    usage: Usage | None = None

    lines = response.aiter_lines()

    async def with_flush() -> AsyncIterator[str]:
        try:
            async for line in lines:
                yield line
        except httpx.TransportError:
            # The connection dropped. After the finish reason the answer is whole (a server
            # that closes without [DONE], abruptly); before it, the call failed.
            if finish is None:
                raise
        yield ""  # flush an event the server did not terminate

    async for line in with_flush():
        for sse in decoder.feed(line):
            if sse.data.strip() == "[DONE]":
                if finish is None:
                    raise BadResponse("[DONE] before any finish reason")
                yield StreamFinished(finish, usage)
                # Read to the end of the body (the chunked terminator follows at once), so
                # the connection goes back to the pool instead of being closed; a connection
                # that drops there takes nothing from the answer, which is whole.
                with contextlib.suppress(httpx.TransportError):
                    async for _ in lines:
                        pass
                return
            chunk = _parse_chunk(sse.data)
            usage = _usage(chunk) or usage
            try:
                events = _chunk_events(chunk)
            except (AttributeError, TypeError, ValueError, OverflowError) as error:
                raise BadResponse(f"malformed chunk: {error}") from error
            for event in events:
                if isinstance(event, StreamFinished):
                    finish = event.finish_reason
                else:
                    yield event
    if finish is None:
        raise BadResponse("the stream ended without a finish reason")
    # Some servers close the stream after the finish reason without sending [DONE].
    yield StreamFinished(finish, usage)


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = parse_json(data)
    except ValueError as error:  # not JSON (json_text.parse_json)
        raise BadResponse(f"malformed SSE data (not JSON): {data[:80]!r}") from error
    if not isinstance(chunk, dict):
        raise BadResponse("malformed SSE data (not a JSON object)")
    if "error" in chunk:
        # Errors that happen after the 200 arrive inside the stream.
        raise ProviderUnavailable(f"error in stream: {str(chunk['error'])[:_ERROR_BODY_CHARS]}")
    return chunk


def _chunk_events(chunk: dict[str, Any]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise BadResponse("malformed chunk: choices is not a list")
    for choice in choices[:1]:  # n=1: one choice
        if not isinstance(choice, dict):
            raise BadResponse("malformed chunk: choice is not an object")
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(encodable(content)))
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=int(call.get("index", 0)),
                    id=_text_or_none(call.get("id"), "id"),
                    name=_text_or_none(function.get("name"), "function.name"),
                    arguments=_text_or_none(function.get("arguments"), "function.arguments") or "",
                )
            )
        reason = choice.get("finish_reason")
        if reason:
            events.append(StreamFinished(_FINISH_REASONS.get(reason, FinishReason.STOP)))
    return events


def _text_or_none(value: object, field: str) -> str | None:
    """A tool call fragment's field: text or absent. Anything else (an id of 77, arguments sent
    as an object) is a malformed response here, not a TypeError when the fragments are joined,
    which would leave the request without any result (dead-lettered, its turn never ending)."""
    if value is None:
        return None
    if isinstance(value, str):
        return encodable(value)
    raise BadResponse(f"malformed chunk: tool call {field} is not a string")


def _usage(chunk: dict[str, Any]) -> Usage | None:
    raw = chunk.get("usage")
    if not isinstance(raw, dict):
        return None
    counts = {k: raw.get(k) or 0 for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    try:
        usage = Usage.model_validate(counts)
        if not usage.total_tokens:
            # A server that sends no total (or null) still used the tokens it counted: a total
            # of 0 refunded the whole reservation of the token rate limit (which settles on the
            # total) and told audit and clients the call cost nothing.
            counts["total_tokens"] = usage.prompt_tokens + usage.completion_tokens
            usage = Usage.model_validate(counts)
        return usage
    except ValueError as error:
        raise BadResponse(f"malformed usage: {error}") from error
