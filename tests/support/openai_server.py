"""A real HTTP server on 127.0.0.1 that speaks OpenAI's streaming chat completions protocol.

Tests point the real provider (httpx, real sockets) at it, so what is tested is the wire:
status codes, headers, chunked SSE, [DONE], dropped and stalled connections. Each test
scripts the replies: `server.script(reply, reply, ...)` answers the next calls in order, then
`default` answers the rest. Built on asyncio streams (HTTP/1.1, keep-alive, chunked
responses); `in_thread()` runs it on its own event loop for the benchmark.

    server = FakeOpenAIServer()
    await server.start()
    server.script(status(429, retry_after="1"), text_stream("Hello"))
    ... provider with base_url=server.base_url ...
    assert server.calls == 2
    await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one POST /chat/completions."""

    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    """Non-streaming body (errors)."""
    events: Sequence[str] = ()
    """SSE lines to stream (each written as one HTTP chunk, already framed)."""
    latency_s: float = 0.0
    """Before the status line: time to first byte."""
    chunk_delay_s: float = 0.0
    hang_s: float | None = None
    """After the headers (or before them, if `hang_before_headers`), say nothing this long."""
    hang_before_headers: bool = False
    close_after_events: bool = False
    """Drop the connection instead of ending the chunked body (a dropped stream)."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    json: Json | None
    received_at: float = field(default_factory=time.monotonic)


def _chunk(delta: Json, finish_reason: str | None = None, model: str = "fake-model") -> str:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(payload)}\n\n"


def _usage(prompt: int, completion: int) -> str:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    return f"data: {json.dumps({'id': 'chatcmpl-fake', 'choices': [], 'usage': usage})}\n\n"


def text_stream(
    text: str,
    *,
    chunk_chars: int = 5,
    usage: tuple[int, int] | None = (11, 7),
    latency_s: float = 0.0,
    chunk_delay_s: float = 0.0,
    finish_reason: str = "stop",
) -> Reply:
    events = [_chunk({"role": "assistant", "content": ""})]
    events += [
        _chunk({"content": text[i : i + chunk_chars]}) for i in range(0, len(text), chunk_chars)
    ]
    events.append(_chunk({}, finish_reason))
    if usage is not None:
        events.append(_usage(*usage))
    events.append("data: [DONE]\n\n")
    return Reply(events=events, latency_s=latency_s, chunk_delay_s=chunk_delay_s)


def tool_call_stream(
    name: str, arguments: str, *, call_id: str = "call_fake_1", fragments: int = 3
) -> Reply:
    size = max(1, -(-len(arguments) // fragments))
    first = {
        "index": 0,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    events = [_chunk({"role": "assistant", "content": None, "tool_calls": [first]})]
    events += [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + size]}}]})
        for i in range(0, len(arguments), size)
    ]
    events += [_chunk({}, "tool_calls"), _usage(20, 9), "data: [DONE]\n\n"]
    return Reply(events=events)


def parallel_tool_calls_stream(calls: Sequence[tuple[str, str]], *, text: str = "") -> Reply:
    """Several tool calls in one answer (OpenAI's parallel tool calls): each call's id and name
    first, then its arguments in two fragments, the calls interleaved as a real stream does."""
    events = [_chunk({"role": "assistant", "content": text or None})]
    for index, (name, _) in enumerate(calls):
        first = {
            "index": index,
            "id": f"call_fake_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        events.append(_chunk({"tool_calls": [first]}))
    for half in (0, 1):
        for index, (_, arguments) in enumerate(calls):
            middle = len(arguments) // 2
            piece = arguments[:middle] if half == 0 else arguments[middle:]
            events.append(
                _chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events += [_chunk({}, "tool_calls"), _usage(20, 9), "data: [DONE]\n\n"]
    return Reply(events=events)


def status(code: int, *, retry_after: str | None = None, message: str = "scripted error") -> Reply:
    headers = [("Content-Type", "application/json")]
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    body = json.dumps({"error": {"message": message, "type": "scripted", "code": code}}).encode()
    return Reply(status=code, headers=headers, body=body)


def hang(seconds: float = 3600.0, *, before_headers: bool = False) -> Reply:
    """Accept the request, then say nothing (after the 200 headers unless `before_headers`)."""
    return Reply(hang_s=seconds, hang_before_headers=before_headers)


def malformed_sse() -> Reply:
    """A 200 stream whose data is not JSON, then [DONE]."""
    return Reply(
        events=[
            _chunk({"role": "assistant", "content": ""}),
            'data: {"choices": [{"delta": {"content": "oops"\n\n',
            "data: [DONE]\n\n",
        ]
    )


def not_sse() -> Reply:
    """A 200 'stream' of plain JSON lines with no `data:` framing at all."""
    return Reply(events=['{"choices": [{"delta": {"content": "plain"}}]}\n', "goodbye\n"])


def dropped_stream(text: str = "partial answer") -> Reply:
    """Streams some content, then drops the connection before finishing."""
    events = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": text})]
    return Reply(events=events, close_after_events=True)


def finished_then_dropped(text: str = "a whole answer") -> Reply:
    """Streams an answer with its finish reason, then drops the connection without [DONE]."""
    events = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": text}),
        _chunk({}, finish_reason="stop"),
    ]
    return Reply(events=events, close_after_events=True)


@dataclass
class _State:
    script: deque[Reply] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    disconnects: int = 0
    completed: int = 0
    connections: int = 0
    finished_at: dict[int, float] = field(default_factory=dict)
    """Index of a request in `requests` → when its reply was completely written."""
    disconnected_at: dict[int, float] = field(default_factory=dict)
    """Index of a request in `requests` → when the client closed its stream mid-reply."""


class FakeOpenAIServer:
    def __init__(
        self,
        default: Reply | None = None,
        responder: Callable[[RecordedRequest], Reply | None] | None = None,
    ) -> None:
        self.default = default or text_stream("Hello from the fake OpenAI server.")
        self.responder = responder
        """Answers what the script does not, from the request (None: `default`)."""
        self._state = _State()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    # ------------------------------------------------------------------ control

    def script(self, *replies: Reply) -> None:
        """Answer the next calls with these replies, in order; then `default`."""
        self._state.script.extend(replies)

    def reset(self, default: Reply | None = None) -> None:
        self._state = _State()
        if default is not None:
            self.default = default

    @property
    def calls(self) -> int:
        return len(self._state.requests)

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self._state.requests)

    def finished_at(self, index: int) -> float | None:
        """When the reply to `requests[index]` was completely written (None: not, or cut off)."""
        return self._state.finished_at.get(index)

    def disconnected_at(self, index: int) -> float | None:
        """When (time.monotonic) the client closed the connection while `requests[index]` was
        being streamed: seen at once by a read, not at the next write (None: it did not)."""
        return self._state.disconnected_at.get(index)

    @property
    def disconnects(self) -> int:
        """Connections the client closed while a reply was still being streamed or awaited."""
        return self._state.disconnects

    @property
    def connections(self) -> int:
        """TCP connections accepted (keep-alive reuse keeps this below `calls`)."""
        return self._state.connections

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def wait_for(
        self, predicate: Callable[[FakeOpenAIServer], bool], within_s: float = 5.0
    ) -> None:
        """Wait until `predicate(server)` holds (polled: the server may run in another thread)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while not predicate(self):
            if loop.time() > deadline:
                raise TimeoutError(f"condition not met within {within_s} s (calls={self.calls})")
            await asyncio.sleep(0.01)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=2048)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    @classmethod
    @contextlib.contextmanager
    def in_thread(
        cls,
        default: Reply | None = None,
        responder: Callable[[RecordedRequest], Reply | None] | None = None,
    ) -> Iterator[FakeOpenAIServer]:
        """Run a server on its own event loop in a daemon thread (for the benchmark)."""
        server = cls(default, responder)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # ------------------------------------------------------------------ serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._state.connections += 1
        try:
            while True:  # keep-alive: one request after another on this connection
                request = await self._read_request(reader)
                if request is None:
                    return
                keep_open = await self._answer(request, reader, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self._state.disconnects += 1
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed an idle keep-alive connection
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        payload = json.loads(body) if body else None
        return RecordedRequest(method, path, headers, payload)

    async def _answer(
        self, request: RecordedRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            await _write_plain(writer, 404, b'{"error": {"message": "not found"}}', [])
            return True
        index = len(self._state.requests)
        self._state.requests.append(request)
        reply = self._state.script.popleft() if self._state.script else None
        if reply is None and self.responder is not None:
            reply = self.responder(request)
        reply = reply or self.default
        if reply.latency_s:
            await asyncio.sleep(reply.latency_s)
        if reply.hang_s is not None and reply.hang_before_headers:
            return await self._hang(reply.hang_s, reader)
        if reply.status != 200 or (not reply.events and reply.hang_s is None):
            await _write_plain(writer, reply.status, reply.body, list(reply.headers))
            self._finished(index)
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        if reply.hang_s is not None:
            return await self._hang(reply.hang_s, reader)
        # The client sends nothing while it reads a reply: a read that returns is its close.
        closed = asyncio.ensure_future(reader.read(1))
        closed.add_done_callback(lambda _: self._closed_mid_reply(index, closed))
        try:
            for event in reply.events:
                if reply.chunk_delay_s:
                    await asyncio.wait({closed}, timeout=reply.chunk_delay_s)
                if closed.done():
                    raise ConnectionResetError("the client closed the stream")
                data = event.encode()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
        finally:
            closed.cancel()
        if reply.close_after_events:
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self._finished(index)
        return True

    def _closed_mid_reply(self, index: int, read: asyncio.Future[bytes]) -> None:
        if not read.cancelled() and (read.exception() is not None or not read.result()):
            self._state.disconnected_at[index] = time.monotonic()

    def _finished(self, index: int) -> None:
        self._state.completed += 1
        self._state.finished_at[index] = time.monotonic()

    async def _hang(self, seconds: float, reader: asyncio.StreamReader) -> bool:
        """Say nothing; notice when the client gives up and closes the connection."""
        try:
            data = await asyncio.wait_for(reader.read(1), seconds)
        except TimeoutError:
            return False
        if not data:
            self._state.disconnects += 1
        return False


async def _write_plain(
    writer: asyncio.StreamWriter, code: int, body: bytes, headers: list[tuple[str, str]]
) -> None:
    reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(code, "Error")
    lines = [f"HTTP/1.1 {code} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.support.openai_server --latency-s 1`: serve until killed (benchmarks).

    Prints `listening <base_url>` once it accepts connections.
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency-s", type=float, default=1.0, help="time to first byte")
    parser.add_argument("--text", default="A benchmark answer, streamed in a few small chunks.")
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = FakeOpenAIServer(text_stream(args.text, chunk_chars=10, latency_s=args.latency_s))
        await server.start()
        print(f"listening {server.base_url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
