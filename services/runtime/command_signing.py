"""The HMAC key a publisher of commands signs with (contracts/signature.py), from a setting or
a mounted secret file: one rule for every publisher (the CLI, the gateway)."""

from pathlib import Path

from pydantic import SecretStr

from contracts.codec import EncodedRecord
from contracts.signature import SIGNATURE_HEADER, signature


def signing_key(inline: SecretStr | None, file: Path | None) -> bytes | None:
    """The inline key, else the file's content (one trailing newline dropped), else None.

    An empty key is a `ValueError` (the settings' validators call this, so it stops the
    process as an invalid setting): anyone can compute an HMAC under the empty key, so a
    source "keyed" with it would be believed whoever published."""
    if inline is not None:
        key = inline.get_secret_value().encode()
    elif file is not None:
        try:
            key = file.read_bytes().rstrip(b"\r\n")
        except OSError as error:
            raise ValueError(f"{file} cannot be read ({error.strerror})") from None
    else:
        return None
    if not key:
        raise ValueError("the HMAC key is empty (an empty key proves nothing)")
    return key


def sign(record: EncodedRecord, key: bytes | None) -> None:
    """Add the `signature` header session-commands checks for a source with a key."""
    if key is not None:
        record.headers.append((SIGNATURE_HEADER, signature(record.value, key)))
