"""How a publisher proves the `source` of a command: an HMAC of the record value.

    headers.append((SIGNATURE_HEADER, signature(record.value, key)))

session-commands checks it for every source configured with a key (docs/security.md).
"""

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "signature"
_SCHEME: Final = "hmac-sha256="


def signature(value: bytes, key: bytes) -> bytes:
    """The `signature` header value: `hmac-sha256=<hex>` of `value` under `key`."""
    return (_SCHEME + hmac.new(key, value, hashlib.sha256).hexdigest()).encode()


def signature_matches(given: bytes, value: bytes, key: bytes) -> bool:
    # Hex is case-insensitive: RFC 4648's base16 alphabet is upper-case, and so is the hex of
    # common libraries (.NET's Convert.ToHexString); the scheme name is matched as written.
    scheme, digest = given[: len(_SCHEME)], given[len(_SCHEME) :]
    return hmac.compare_digest(scheme + digest.lower(), signature(value, key))
