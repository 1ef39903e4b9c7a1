"""Optional JWT auth: a real JWKS endpoint (a local HTTP server), RS256 tokens signed here."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.integration.gateway.in_process import closed_port, in_process_gateway

pytestmark = pytest.mark.integration

ISSUER, AUDIENCE = "https://idp.example", "agent-runtime"
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC_KEY = ec.generate_private_key(ec.SECP256R1())
_NOT_A_KEY_SET = {
    "/proxy-page": (b"<html>sign in to the proxy</html>", "text/html"),
    "/no-keys": (b'{"keys": []}', "application/json"),
}


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(_KEY.public_key()))
    ec_jwk = json.loads(ECAlgorithm.to_jwk(_EC_KEY.public_key()))
    keys = [
        {**jwk, "kid": "k1", "use": "sig", "alg": "RS256"},
        {**ec_jwk, "kid": "e1", "use": "sig", "alg": "ES256"},
    ]
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answer, content_type = _NOT_A_KEY_SET.get(self.path, (body, "application/json"))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(answer)

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


def claims(**overrides: Any) -> dict[str, Any]:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "sub": "u-1"}
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def token(key: rsa.RSAPrivateKey = _KEY, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, "RS256", headers={"kid": "k1"})


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
        # An issuer whose clock runs a few seconds ahead: its fresh tokens are good (were 401
        # until the gateway's clock caught up), within gateway_jwt_leeway_s (30 s).
        assert await status(token(org="acme", iat=int(time.time()) + 5)) == 200
        assert await status(token(org="acme", nbf=int(time.time()) + 5)) == 200
        assert await status(token(org="acme", nbf=int(time.time()) + 120)) == 401
        assert await status(token(_OTHER_KEY, org="acme")) == 401  # not the issuer's key
        assert await status("a.b.c") == 401
        # An algorithm of another key type than the key the token names: a bad token (was a
        # TypeError inside the signature check, a 500 or a dropped connection).
        assert await status(jwt.encode(claims(org="acme"), _KEY, "RS256", {"kid": "e1"})) == 401
        assert await status(jwt.encode(claims(org="acme"), _EC_KEY, "ES256", {"kid": "k1"})) == 401
        assert await status(jwt.encode(claims(org="acme"), _EC_KEY, "ES256", {"kid": "e1"})) == 200


@pytest.mark.parametrize("path", sorted(_NOT_A_KEY_SET))
async def test_a_jwks_url_that_answers_no_key_set_is_503(
    jwks_url: str, path: str, mongodb_uri: str
) -> None:
    """A proxy's page or an empty set instead of the issuer's keys: the identity provider is
    unavailable (503 for everyone), not every caller's token bad (401) or a 500."""
    async with in_process_gateway(
        mongodb_uri=mongodb_uri,
        gateway_jwt_jwks_url=jwks_url.replace("/jwks.json", path),
        gateway_jwt_issuer=ISSUER,
        gateway_jwt_audience=AUDIENCE,
    ) as gw:
        response = await gw.http.get(
            "/v1/sessions", headers={"Authorization": f"Bearer {token(tenant_id='acme')}"}
        )
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "identity_provider_unavailable"


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
