"""Optional JWT auth: a real JWKS endpoint (a local HTTP server), RS256 tokens signed here."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.integration.gateway.in_process import closed_port, in_process_gateway

pytestmark = pytest.mark.integration

ISSUER, AUDIENCE = "https://idp.example", "agent-runtime"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def token(key: rsa.RSAPrivateKey = _KEY, **claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "u-1"}
    payload.update(claims)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None}, key, "RS256", headers={"kid": "k1"}
    )


async def test_jwt_names_the_tenant_and_bad_tokens_are_401(
    jwks_url: str, mongodb_uri: str, mongo_database_name: str
) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri,
        mongodb_database=mongo_database_name,
        gateway_jwt_jwks_url=jwks_url,
        gateway_jwt_issuer=ISSUER,
        gateway_jwt_audience=AUDIENCE,
        gateway_jwt_tenant_claim="org",
    ) as gw:

        async def status(bearer: str) -> int:
            response = await gw.http.get(
                "/v1/sessions", headers={"Authorization": f"Bearer {bearer}"}
            )
            return response.status_code

        assert await status(token(org="acme")) == 200
        assert await status(gw.key) == 200  # API keys keep working beside JWTs
        assert await status(token(org=None)) == 401  # no tenant claim
        assert await status(token(org="not a tenant!")) == 401
        assert await status(token(org="acme", aud="someone-else")) == 401
        assert await status(token(org="acme", iss="https://evil.example")) == 401
        assert await status(token(org="acme", exp=int(time.time()) - 60)) == 401
        assert await status(token(_OTHER_KEY, org="acme")) == 401  # not the issuer's key
        assert await status("a.b.c") == 401


async def test_unreachable_jwks_is_503(mongodb_uri: str) -> None:
    async with in_process_gateway(
        mongodb_uri=mongodb_uri,
        gateway_jwt_jwks_url=f"http://127.0.0.1:{closed_port()}/jwks.json",
        gateway_jwt_issuer=ISSUER,
        gateway_jwt_audience=AUDIENCE,
    ) as gw:
        response = await gw.http.get(
            "/v1/sessions", headers={"Authorization": f"Bearer {token(tenant_id='acme')}"}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "identity_provider_unavailable"
        assert response.headers["retry-after"] == "5"
