import hashlib

import pytest

from contracts.audit import RedactionMode
from services.audit.redaction import RedactionPolicy

pytestmark = pytest.mark.unit

TEXT = "Résumé of the incident: the checkout crashed twice."


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_hashed_is_the_default_and_keeps_only_hash_and_length() -> None:
    content = RedactionPolicy().redact(TEXT)
    assert content.mode is RedactionMode.HASHED
    assert content.text is None
    assert content.sha256 == sha(TEXT)
    assert content.length == len(TEXT)


def test_truncated_keeps_the_first_n_characters() -> None:
    content = RedactionPolicy(RedactionMode.TRUNCATED, truncate_chars=6).redact(TEXT)
    assert (content.mode, content.text, content.length) == (
        RedactionMode.TRUNCATED,
        "Résumé",
        len(TEXT),
    )


def test_full_keeps_everything_up_to_its_bound() -> None:
    assert RedactionPolicy(RedactionMode.FULL).redact(TEXT).text == TEXT
    bounded = RedactionPolicy(RedactionMode.FULL, full_max_chars=5).redact(TEXT)
    assert (bounded.mode, bounded.text) == (RedactionMode.TRUNCATED, "Résum")


@pytest.mark.parametrize("mode", list(RedactionMode))
def test_secrets_are_scrubbed_before_the_policy_applies(mode: RedactionMode) -> None:
    secret_text = "use sk-proj-0123456789abcdef please"
    content = RedactionPolicy(mode, truncate_chars=100).redact(secret_text)
    scrubbed = "use [REDACTED:api_key] please"
    assert content.secrets_removed == 1
    assert content.sha256 == sha(scrubbed)
    assert content.length == len(scrubbed)
    assert content.text in (None, scrubbed)


def test_the_same_content_hashes_the_same_wherever_it_appears() -> None:
    policy = RedactionPolicy()
    assert policy.redact(TEXT).sha256 == policy.part("messages[1].content", TEXT).content.sha256


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="truncate_chars"):
        RedactionPolicy(truncate_chars=-1)
