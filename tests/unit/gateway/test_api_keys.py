"""API keys: stored hashed, mapped to a tenant, loaded from settings and a mounted file."""

from pathlib import Path

import pytest

from services.gateway.api_keys import (
    ApiKeyConfigError,
    ApiKeyRegistry,
    hash_api_key,
    new_api_key,
)


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
