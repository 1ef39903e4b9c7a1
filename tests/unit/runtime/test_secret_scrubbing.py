import time

import pytest

from services.runtime.secret_scrubbing import _PATTERNS, scrub, scrub_with

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("key sk-proj-Abc123Def456Ghi789 here", "sk-proj-Abc123Def456Ghi789", "api_key"),
        ("sk-ant-api03-ZyXwVuTsRqPoNmLk", "sk-ant-api03-ZyXwVuTsRqPoNmLk", "api_key"),
        ("OPENAI_API_KEY=sk-abcdefghijklmnop", "sk-abcdefghijklmnop", "api_key"),
        ("id AKIAIOSFODNN7EXAMPLE.", "AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789abcdefghij", "github_token"),
        ("xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij", "slack_token"),
        ("AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefg", "google_api_key"),
        ("hf_abcdefghijklmnopqrstuvwxyz", "hf_abcdefghijklmnopqrstuvwxyz", "huggingface_token"),
        ("eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4", "eyJhbGciOi.eyJzdWIiOiIx", "jwt"),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl", "authorization"),
        ('{"Authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz", "authorization"),
        ("curl -H 'bearer qwertyuiop123'", "qwertyuiop123", "bearer_token"),
        # Basic credentials quoted outside a header: base64 of "user:pass".
        ("proxy refused Basic dXNlcjpwYXNz.", "dXNlcjpwYXNz", "basic_credentials"),
        ("basic YWRtaW46czNjcjN0IQ==", "YWRtaW46czNjcjN0IQ==", "basic_credentials"),
        ("postgres://app:s3cr3t-pw@db:5432/x", "app:s3cr3t-pw", "url_credentials"),
        ('{"password": "correct horse battery"}', "correct horse battery", "credential"),
        ("api_key = 'abcd1234efgh'", "abcd1234efgh", "credential"),
        ("X-Api-Key: 0123456789abcdef", "0123456789abcdef", "credential"),
        ("client_secret=zzzzzzzz", "zzzzzzzz", "credential"),
        # A credential's name at the end of a longer one: environment variables, .env files.
        ("OPENAI_API_KEY=abcd1234efgh5678", "abcd1234efgh5678", "credential"),
        ("DB_PASSWORD=hunter2hunter2", "hunter2hunter2", "credential"),
        ("export GITHUB_TOKEN=abcdefgh12345", "abcdefgh12345", "credential"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG", "credential"),
        ("aws_secret_access_key = wJalrXUtnFEMI", "wJalrXUtnFEMI", "credential"),
        # JSON inside a JSON string: a config file written by a tool call.
        ('{"content": "{\\"password\\": \\"hunter 2\\"}"}', "hunter 2", "credential"),
        ('"{\\"Authorization\\": \\"Basic dXNlcjpwYXNz\\"}"', "dXNlcjpwYXNz", "authorization"),
        ("stripe sk_live_abcdefghijkl", "sk_live_abcdefghijkl", "api_key"),
        ("sk_test_abcdefghijkl", "sk_test_abcdefghijkl", "api_key"),
        # A URL's credentials with an empty user (Redis), and a password holding an unescaped
        # `@`: its part after the `@` went out in the clear.
        ("redis://:s3cretpassw0rd@cache:6379/0", "s3cretpassw0rd", "url_credentials"),
        ("postgres://app:p@ss-w0rd@db:5432/x", "ss-w0rd", "url_credentials"),
        ('{"dsn": "mysql://app:pw@x@db/x", "mail": "a@b.c"}', "pw@x", "url_credentials"),
        # Connection strings' own credential names, AWS's temporary credentials, libpq's
        # variable, a passphrase, Ruby/Perl's `=>`.
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4MTIz==;",
            "Zm9vYmFyYmF6cXV4MTIz",
            "credential",
        ),
        (
            "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=Root;"
            "SharedAccessKey=abcdefGHIJKL1234567890=",
            "abcdefGHIJKL1234567890",
            "credential",
        ),
        (
            '{"SessionToken": "IQoJb3JpZ2luX2VjEabcdefgh"}',
            "IQoJb3JpZ2luX2VjEabcdefgh",
            "credential",
        ),
        ("PGPASSWORD=hunter2hunter2", "hunter2hunter2", "credential"),
        ("ssh passphrase: correct-horse-battery", "correct-horse-battery", "credential"),
        ("{ db_password => 'secretsecret' }", "secretsecret", "credential"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0abcdef\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF0abcdef",
            "private_key",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEpAIBAAKCAQEA",
            "private_key",
        ),
    ],
)
def test_a_secret_is_replaced_by_a_marker_of_its_kind(text: str, secret: str, kind: str) -> None:
    result = scrub(text)
    assert secret not in result.text
    assert f"[REDACTED:{kind}]" in result.text
    assert result.secrets_removed == 1


@pytest.mark.parametrize(
    "text",
    [
        "The checkout crashes when the cart is empty.",
        "max_tokens: 100, prompt_tokens=20",
        "token_count: 1234 and MAX_TOKENS=4096",
        "Set LLM_BASE_URL, LLM_API_KEY and LLM_MODEL",
        "the token is expired; ask for a new one",
        "a task-force of risk-assessment folks",
        "see https://example.com/docs?page=2",
        "git clone ssh://git@github.com:org/repo and http://host:8080/a@b",
        "the user's password is required; passwords: none yet",
        # "Basic" before a word that is not base64 of `user:password`.
        "Basic questions about basic types",
        "basic auth needs Basic dXNlcg== (a user without a password)",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub(text).text == text
    assert scrub(text).secrets_removed == 0


def test_a_secret_matched_by_two_patterns_counts_once() -> None:
    result = scrub('Authorization: Bearer sk-abcdefghijklmnop and {"api_key": "sk-qrstuvwxyz12"}')
    assert result.text == (
        'Authorization: Bearer [REDACTED:api_key] and {"api_key": "[REDACTED:api_key]"}'
    )
    assert result.secrets_removed == 2


def test_scrubbing_is_idempotent() -> None:
    once = scrub("token=abcdefgh and sk-abcdefghijklmnop").text
    assert scrub(once).text == once
    assert scrub(once).secrets_removed == 0


_PIECES = (
    "Authorization: Bearer sk-abcdefghijklmnop",
    '{"api_key": "sk-qrstuvwxyz12"}',
    "token=[REDACTED:api_key]",
    "[REDACTED:github_token]: abcdefgh",
    "postgres://app:s3cr3t-pw@db/x",
    "redis://:p@ss@cache",
    "AccountKey=Zm9vYmFy==;",
    "PGPASSWORD=hunter2hunter2",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_0123456789abcdefghijABCDEFGHIJ012345",
    "eyJhbGciOi.eyJzdWIiOiIx.SflKxwRJSMeKKF2QT4",
    "Set LLM_BASE_URL, LLM_API_KEY and LLM_MODEL",
    "password: hunter2hunter2",
    "DB_PASSWORD=hunter2hunter2",
    '{\\"api_key\\": \\"abcd1234efgh\\"}',
    "sk_live_abcdefghijkl",
    "bearer qwertyuiop123",
    "Basic dXNlcjpwYXNz",
    "basic understanding",
    "xoxb-1234567890-abcdefghij",
    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    "keep it short",
)


@pytest.mark.parametrize("first", _PIECES)
def test_running_only_the_patterns_whose_literal_occurs_changes_nothing(first: str) -> None:
    # scrub() skips the patterns whose literals the text lacks; every combination of secrets,
    # markers and prose must come out as with all patterns applied in order.
    for second in _PIECES:
        for text in (f"{first} {second}", f"{second}\n{first}", first + second):
            assert scrub(text) == scrub_with(text, _PATTERNS), text


@pytest.mark.parametrize(
    "unit",
    [
        *("eyJ-", "eyJaaaaa.b-", "eyJaaaaa.bbbbb.c-", "://a:", "://:@", "://a:b", "a@"),
        *("token: ", "basic ", "basic a", "xpassword => "),
    ],
)
def test_scrubbing_takes_linear_time_on_hostile_text(unit: str) -> None:
    # A dead letter's bytes (up to a megabyte) are scrubbed on the event loop: "eyJ-" repeated
    # made every `eyJ` a JWT start that scanned the rest of the text, 60 s for 256 KB, during
    # which the audit answered no probe and lost its group membership. Now ~25 ms.
    text = unit * (256_000 // len(unit))
    started = time.perf_counter()
    scrub(text)
    assert time.perf_counter() - started < 2.0
