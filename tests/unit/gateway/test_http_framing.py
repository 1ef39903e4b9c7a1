"""A request that is not HTTP/1.1 gets a `malformed_request` problem, not uvicorn's plain text."""

import asyncio
import json
import socket

import pytest
import uvicorn
from fastapi import FastAPI

from services.gateway.__main__ import server_config
from services.gateway.http_framing import HEAD_DETAIL, MAX_HEAD_BYTES
from services.gateway.settings import GatewaySettings

GARBAGE_REQUESTS = [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=10)  # until the server closes
    writer.close()
    return answer


@pytest.mark.parametrize("request_bytes", GARBAGE_REQUESTS)
async def test_a_request_that_is_not_http_gets_a_problem(request_bytes: bytes) -> None:
    # Listening before uvicorn starts: the connection waits in the backlog until it accepts.
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(server_config(FastAPI(), GatewaySettings(_env_file=None)))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        answer = await _exchange(port, request_bytes)
    finally:
        server.should_exit = True
        await serving
        listening.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    problem = json.loads(body)
    assert problem["code"] == "malformed_request"
    assert problem["status"] == 400
    assert problem["type"].endswith("/malformed_request")
    assert problem["detail"]


async def _serve_one(request: bytes) -> bytes:
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(server_config(FastAPI(), GatewaySettings(_env_file=None)))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        return await _exchange(port, request)
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def test_a_request_head_over_64_kib_is_refused_before_it_ends() -> None:
    """httptools bounds no header: a 200 MB one was held in memory until it ended. One byte
    over the bound, and the head not even finished, the answer is a problem."""
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
    request = start + b"a" * (MAX_HEAD_BYTES + 1 - len(start))

    answer = await _serve_one(request)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"connection: close" in head.lower()
    problem = json.loads(body)
    assert (problem["code"], problem["detail"]) == ("malformed_request", HEAD_DETAIL)


async def test_a_request_head_under_64_kib_is_served() -> None:
    start = b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
    request = start + b"a" * (MAX_HEAD_BYTES - 4 - len(start)) + b"\r\n\r\n"
    assert len(request) == MAX_HEAD_BYTES

    answer = await _serve_one(request)

    assert answer.split(b"\r\n")[0] == b"HTTP/1.1 404 Not Found"
