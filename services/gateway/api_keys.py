"""Bearer API keys → tenant. Only hashes are stored; lookups compare in constant time.

API keys are random high-entropy secrets (`new_api_key()`: 256 bits), so a plain SHA-256 is
enough to make a leaked key list useless; a slow password hash would only slow every request.
Each presented key is hashed and compared with *every* stored hash by `hmac.compare_digest`,
without stopping at a match, so timing says nothing about which or how many keys exist.
"""

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.base import is_valid_id
from services.runtime.settings_errors import ConfigFileError

HASH_PREFIX = "sha256:"
_DIGEST = re.compile(HASH_PREFIX + "[0-9a-f]{64}")


class ApiKeyConfigError(ConfigFileError):
    """A key entry that cannot be used; the service refuses to start, naming it."""


def hash_api_key(key: str) -> str:
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "ar_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    key_id: str
    """A short, non-secret id of the credential (hash prefix), for rate limits and logs."""
    kind: str = "api-key"
    """How the caller authenticated: `api-key` or `jwt`."""

    @property
    def actor(self) -> str:
        """Who asked, for the audit trail (`requested_by`): never the credential itself."""
        return f"{self.kind}:{self.key_id}"


def _entry_problem(digest: str, tenant: str) -> str | None:
    """What is wrong with one `(hash, tenant)` entry, or None."""
    # Lowercase, as hexdigest() writes it: any other entry could never match. Not echoed: an
    # operator may have pasted the key itself.
    if not _DIGEST.fullmatch(digest):
        return f"the key of tenant {tenant!r} is not sha256:<64 lowercase hex digits>"
    if not is_valid_id(tenant):
        return f"tenant {tenant!r} is not a valid id"
    return None


class ApiKeyRegistry:
    def __init__(self, hashed: Mapping[str, str]) -> None:
        entries: list[tuple[bytes, str]] = []
        for number, (digest, tenant) in enumerate(hashed.items(), start=1):
            problem = _entry_problem(digest, tenant)
            if problem is not None:
                raise ApiKeyConfigError(f"API key entry {number}: {problem}")
            entries.append((digest.encode(), tenant))
        self._entries = tuple(entries)

    @classmethod
    def load(cls, inline: Mapping[str, str], file: Path | None) -> "ApiKeyRegistry":
        hashed = dict(inline)
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:  # not echoed: it may hold a pasted key
                raise ApiKeyConfigError(f"{file}: not UTF-8 text (byte {error.start})") from None
            except OSError as error:  # named as the file the setting gives, like the others
                raise ApiKeyConfigError(
                    f"API keys file {file}: {error.strerror or error}"
                ) from None
            for number, line in enumerate(text.splitlines(), start=1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                parts = text.split()
                if len(parts) != 2:
                    raise ApiKeyConfigError(f"{file}:{number}: expected `<sha256:hex> <tenant>`")
                # Checked here, by file and line: merged with the inline entries first, a bad
                # line was "API key entry N", numbered among both, the file not named.
                problem = _entry_problem(parts[0], parts[1])
                if problem is not None:
                    raise ApiKeyConfigError(f"{file}:{number}: {problem}")
                hashed[parts[0]] = parts[1]
        return cls(hashed)

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, key: str) -> Principal | None:
        presented = hash_api_key(key).encode()
        found: str | None = None
        for digest, tenant in self._entries:
            if hmac.compare_digest(presented, digest):
                found = tenant
        if found is None:
            return None
        return Principal(tenant_id=found, key_id=presented.decode()[len(HASH_PREFIX) :][:12])
