"""API keys: stored hashed, mapped to a tenant, loaded from settings and a mounted file; the
JWT settings."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.api_keys import (
    ApiKeyConfigError,
    ApiKeyRegistry,
    hash_api_key,
    new_api_key,
)
from services.gateway.settings import GatewaySettings


def test_a_known_key_gives_its_tenant_and_an_unknown_one_nothing() -> None:
    key_a, key_b = new_api_key(), new_api_key()
    registry = ApiKeyRegistry({hash_api_key(key_a): "acme", hash_api_key(key_b): "globex"})
    found = registry.authenticate(key_a)
    assert found is not None
    assert found.tenant_id == "acme"
    assert key_a not in found.key_id  # the id is a hash prefix, not the secret
    assert registry.authenticate(key_b) is not None
    assert registry.authenticate(key_b).tenant_id == "globex"  # type: ignore[union-attr]
    assert registry.authenticate("ar_guess") is None
    assert registry.authenticate("") is None


def test_keys_from_a_mounted_file(tmp_path: Path) -> None:
    key = new_api_key()
    secret = tmp_path / "keys"
    secret.write_text(f"# tenant keys\n{hash_api_key(key)} acme  # the CRM\n\n")
    registry = ApiKeyRegistry.load({}, secret)
    assert len(registry) == 1
    assert registry.authenticate(key) is not None


@pytest.mark.parametrize(
    "entry",
    [
        {"md5:abc": "acme"},
        {hash_api_key("k"): "not a tenant!"},
        {"sha256:short": "acme"},
        {"sha256:" + "z" * 64: "acme"},  # the right length, not hex: it could never match
        {hash_api_key("k").upper().replace("SHA256:", "sha256:"): "acme"},  # nor uppercase
    ],
)
def test_bad_entries_refuse_to_start(entry: dict[str, str]) -> None:
    with pytest.raises(ApiKeyConfigError):
        ApiKeyRegistry(entry)


def test_only_hashes_are_kept() -> None:
    key = new_api_key()
    assert hash_api_key(key).startswith("sha256:")
    assert key not in hash_api_key(key)


def test_a_key_file_that_is_not_text_refuses_to_start_naming_it(tmp_path: Path) -> None:
    # Was a UnicodeDecodeError traceback (exit 1), not the one line of a bad file (exit 2).
    secret = tmp_path / "keys"
    secret.write_bytes(b"\xff\xfe ar_pasted-key acme\n")
    with pytest.raises(ApiKeyConfigError, match="not UTF-8") as raised:
        ApiKeyRegistry.load({}, secret)
    assert str(secret) in str(raised.value)
    assert "pasted" not in str(raised.value)


@pytest.mark.parametrize("missing", [False, True])
def test_a_key_file_that_cannot_be_read_refuses_to_start_naming_it(
    tmp_path: Path, missing: bool
) -> None:
    # As the other configuration files say it (`MCP servers file …: No such file or
    # directory`); it was `[Errno 2] No such file or directory: '…'`, no setting named.
    unreadable = tmp_path / "absent" if missing else tmp_path
    with pytest.raises(ApiKeyConfigError) as raised:
        ApiKeyRegistry.load({}, unreadable)
    reason = "No such file or directory" if missing else "Is a directory"
    assert str(raised.value) == f"API keys file {unreadable}: {reason}"


@pytest.mark.parametrize("algorithms", [["none"], ["RS256", "HS256"], []])
def test_jwt_algorithms_are_public_key_ones(algorithms: list[str]) -> None:
    # A JWKS holds public keys: `none` or an HMAC algorithm (keyed with what every holder of
    # the JWKS knows) was accepted as a setting.
    with pytest.raises(ValidationError, match="gateway_jwt_algorithms"):
        GatewaySettings(_env_file=None, gateway_jwt_algorithms=algorithms)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("sha256:zz acme", "the key of tenant 'acme' is not sha256:<64 lowercase hex digits>"),
        (f"{hash_api_key('k')} not/a-tenant", "tenant 'not/a-tenant' is not a valid id"),
    ],
)
def test_a_bad_line_of_the_key_file_is_named_by_file_and_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    # operations.md: a configuration file that cannot be used stops the gateway "with the file
    # and what is wrong in it"; it said "API key entry 2", numbered among the inline entries.
    secret = tmp_path / "keys"
    secret.write_text(f"# keys\n{hash_api_key('a')} acme\n{line}\n", encoding="utf-8")
    with pytest.raises(ApiKeyConfigError) as raised:
        ApiKeyRegistry.load({hash_api_key("b"): "globex"}, secret)
    assert str(raised.value) == f"{secret}:3: {problem}"
