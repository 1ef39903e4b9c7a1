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


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose framing errors are problem details."""

    def send_400_response(self, msg: str) -> None:
        # `msg` is uvicorn's own constant text ("Invalid HTTP request received."), never input.
        problem = ApiProblem(ProblemCode.MALFORMED_REQUEST, detail=FRAMING_DETAIL)
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
