"""A request that is not HTTP/1.1 at all, answered as a problem like every other error.

Bytes that httptools cannot parse (a bad request line, a header without a colon, a broken
chunked body) never reach the application: uvicorn answers them itself, with a plain-text 400.
uvicorn has no setting for that answer, so this protocol overrides the one method that writes
it. The answer is `malformed_request` as `application/problem+json`, the same shape a client
already handles for a body that is not JSON, and the connection is closed as uvicorn closes
it: after a framing error nothing later on it can be trusted.
"""

import json
from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.gateway.problems import PROBLEM_CONTENT_TYPE, ApiProblem, ProblemCode

FRAMING_DETAIL: Final = "the request is not valid HTTP/1.1; the connection is closed"

MAX_HEAD_BYTES: Final = 64 * 1024
"""The request line and headers together. httptools sets no bound and buffers a header until it
ends: one unauthenticated connection held a 200 MB header in the gateway's memory (the body,
by contrast, stops at `gateway_max_body_bytes`)."""

HEAD_DETAIL: Final = "the request line and headers are over 64 KiB; the connection is closed"


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose framing errors are problem details, and which
    refuses a request head over `MAX_HEAD_BYTES`."""

    _in_body = False  # the current request's head is complete (until its message completes)
    _completed = False  # a request completed in the bytes being parsed
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        self._completed = False
        super().data_received(data)
        if self._in_body or self.transport.is_closing():
            return
        if self._completed:
            # These bytes end an earlier (pipelined) request, maybe with its body: counting
            # them would refuse a head that is not over the limit. At most one read (256 KiB)
            # of a head goes uncounted.
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self.logger.warning("Request head over %d bytes refused.", MAX_HEAD_BYTES)
            self._send_problem(HEAD_DETAIL)

    def on_headers_complete(self) -> None:
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body, self._completed, self._head_bytes = False, True, 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        # `msg` is uvicorn's own constant text ("Invalid HTTP request received."), never input.
        self._send_problem(FRAMING_DETAIL)

    def _send_problem(self, detail: str) -> None:
        problem = ApiProblem(ProblemCode.MALFORMED_REQUEST, detail=detail)
        body = json.dumps(problem.body(instance=None, request_id=None)).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: " + PROBLEM_CONTENT_TYPE.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
