"""Optional JWT bearer tokens (OIDC style): signature by the issuer's JWKS, `iss`, `aud`,
`exp` checked, tenant from a configurable claim.

PyJWT's `PyJWKClient` fetches and caches the key set (5 min; an unknown `kid` fetches it
again, at most once per 30 s). Its fetch is blocking, so verification runs in a worker thread. A key set that
cannot be fetched is the identity provider being unavailable (503), not a bad token (401).
"""

import hashlib
from collections.abc import Sequence

import jwt
from jwt import PyJWK, PyJWKClient

from contracts.base import is_valid_id
from services.gateway.api_keys import Principal


class IdentityProviderUnavailable(Exception):
    pass


def looks_like_jwt(token: str) -> bool:
    """API keys (`ar_` + base64url) have no dots; a JWS compact token has exactly two."""
    return token.count(".") == 2


class JwtVerifier:
    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        tenant_claim: str,
        algorithms: Sequence[str],
        leeway_s: float = 0.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._keys = PyJWKClient(jwks_url, cache_jwk_set=True, lifespan=300, timeout=timeout_s)
        self._issuer = issuer
        self._audience = audience
        self._tenant_claim = tenant_claim
        self._algorithms = list(algorithms)
        self._leeway_s = leeway_s

    def verify(self, token: str) -> Principal | None:
        """The token's tenant, or None when the token is not acceptable. Blocking."""
        signing_key = self._signing_key(token)
        if signing_key is None:
            return None
        try:
            # The PyJWK, not its bare key: it binds the token's `alg` to the key's own (the
            # JWK's `alg`, else its type's), so a token naming an algorithm of another key type
            # is refused as a bad token instead of failing inside the signature check.
            claims = jwt.decode(
                token,
                signing_key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        tenant = claims.get(self._tenant_claim)
        if not isinstance(tenant, str) or not is_valid_id(tenant):
            return None
        subject = str(claims.get("sub", tenant))
        # Rate limits apply per subject (a user or client), as they do per API key.
        key_id = "jwt-" + hashlib.sha256(f"{tenant}\x1f{subject}".encode()).hexdigest()[:12]
        return Principal(tenant_id=tenant, key_id=key_id, kind="jwt")

    def _signing_key(self, token: str) -> PyJWK | None:
        """The issuer's key the token names; None for a token no key of a usable set fits.

        An answer of the JWKS URL that is not a key set (a proxy's HTML page, no signing key)
        is the identity provider being unavailable, as an unreachable one is: a 503 for every
        caller, not a 401 that tells each of them that their token is bad."""
        try:
            return self._keys.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as error:
            raise IdentityProviderUnavailable(str(error)) from None
        except (jwt.PyJWTError, ValueError):  # json.load's error is a ValueError
            pass
        try:
            self._keys.get_signing_keys()  # the cached set, unless it expired
        except jwt.PyJWKClientConnectionError as error:
            raise IdentityProviderUnavailable(str(error)) from None
        except (jwt.PyJWTError, ValueError) as error:
            raise IdentityProviderUnavailable(
                f"the JWKS is not a usable key set: {error}"
            ) from None
        return None
