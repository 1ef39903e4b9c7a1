"""The HMAC key a publisher of commands signs with (contracts/signature.py), from a setting or
a mounted secret file: one rule for every publisher (the CLI, the gateway)."""

from pathlib import Path

from pydantic import SecretStr

from contracts.codec import EncodedRecord
from contracts.signature import SIGNATURE_HEADER, signature


def signing_key(inline: SecretStr | None, file: Path | None) -> bytes | None:
    """The inline key, else the file's content (one trailing newline dropped), else None."""
    if inline is not None:
        return inline.get_secret_value().encode()
    if file is not None:
        return file.read_bytes().rstrip(b"\r\n")
    return None


def sign(record: EncodedRecord, key: bytes | None) -> None:
    """Add the `signature` header session-commands checks for a source with a key."""
    if key is not None:
        record.headers.append((SIGNATURE_HEADER, signature(record.value, key)))
