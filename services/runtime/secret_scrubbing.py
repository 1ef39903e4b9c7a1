"""Remove secrets (API keys, tokens, credentials) from any text before it leaves the service.

One scrubber for every service that lets outside text out: the audit applies it to every piece
of text that goes into an audit record, whatever the redaction mode (content, tool arguments,
error messages, titles, dead-lettered bytes); llm-invocation applies it to every provider error
before it becomes `LLMFailed.message`. A secret is replaced by `[REDACTED:<kind>]`, so a reader
sees that something was there without learning what.

The patterns favour recall over precision: a false positive costs a few characters of text,
a false negative leaks a credential into session events and long-retained logs.
"""

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

# Order matters: specific shapes first, so their kind is reported rather than a generic one.
# A pattern either replaces its whole match or only its `v*` named group (the value after a
# credential's name); a value already replaced by an earlier pattern is left alone.
# A value in quotes, in quotes escaped inside a JSON string (`{\"password\": \"…\"}`: a config
# file in a tool call's arguments), or bare.
_QUOTED_OR_BARE = (
    r"""(?:"(?P<vdq>[^"\n]+)"|'(?P<vsq>[^'\n]+)'|\\"(?P<vesc>[^"\\\n]+)\\"|"""
    r"""(?P<vbare>[^\s"',;}]{4,}))"""
)
_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (
        "private_key",
        re.compile(
            # PEM (`RSA`, `EC`, `OPENSSH`, `ENCRYPTED` …) and OpenPGP's armour (`PGP PRIVATE
            # KEY BLOCK`).
            r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
    # OpenAI / Anthropic / most OpenAI-compatible providers: sk-..., sk-proj-..., sk-ant-...
    ("api_key", re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")),
    # Stripe: secret, publishable and restricted keys.
    ("api_key", re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}")),
    ("huggingface_token", re.compile(r"\bhf_[A-Za-z0-9]{20,}")),
    # The header segment without `-` (base64url of a JSON header has one only after a `>` or
    # `~`): with it, every `eyJ` after a `-` in a long run ("eyJ-eyJ-…") was a start that
    # scanned the whole run, quadratic time that held the event loop for minutes on a
    # dead-lettered megabyte. Possessive (`{5,}+`): a segment never gives characters back.
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_]{5,}+\.[A-Za-z0-9_\-]{5,}+\.[A-Za-z0-9_\-]{5,}+")),
    # Credentials in URLs: scheme://user:password@host. The user may be empty (Redis:
    # `redis://:password@host`), and the password runs to the last `@` before the host's end (a
    # `/`, a space or a quote): a password with an unescaped `@` (`p@ss`) went out half-masked.
    ("url_credentials", re.compile(r"://(?P<v>[^/\s:@\"']*:[^/\s\"']+)@")),
    # Authorization / Proxy-Authorization headers, with any scheme (Bearer, Basic, token…).
    (
        "authorization",
        re.compile(
            r"(?i)\b(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?"
            r"(?:(?:bearer|basic|token|digest|apikey)\s+)?(?P<v>[^\s\"',;}]+)"
        ),
    ),
    ("bearer_token", re.compile(r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9._~+/=\-]{8,})")),
    # HTTP Basic credentials outside a header (a curl line, a proxy's error, a log quoted in a
    # tool result): `Basic ` and base64. Only a value that decodes to `user:password` is taken
    # (`_CONFIRM`): "basic questions" stays prose.
    ("basic_credentials", re.compile(r"(?i)\bbasic\s+(?P<v>[A-Za-z0-9+/]{4,}+={0,2})(?![\w+/=])")),
    # key = value / "key": "value" where the key names a credential.
    (
        "credential",
        re.compile(
            # The lookahead (the names' first letters) fails most positions before the
            # alternation is tried: a third less time on prose. A name may end a longer one
            # (`OPENAI_API_KEY=`, `DB_PASSWORD=`, `AWS_SECRET_ACCESS_KEY=`): not after a letter
            # or digit, but after `_`, which `\b` would refuse.
            # `password`/`passwd`/`passphrase` also right after letters (`PGPASSWORD=`, libpq's).
            # Connection strings name theirs too: Azure's `AccountKey=`, `SharedAccessKey=`;
            # AWS's temporary credentials a `SessionToken`. Ruby and Perl write `=>`.
            r"(?i)(?=[acprstix])(?:(?<![A-Za-z0-9])(?:api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?(?:access[_-]?)?key)?|"
            r"client[_-]?secret|pwd|token|access[_-]?token|refresh[_-]?token|"
            r"auth[_-]?token|id[_-]?token|session[_-]?token|x-api-key|private[_-]?key|"
            r"account[_-]?key|shared[_-]?access[_-]?key)|(?<![0-9])pass(?:word|wd|phrase))"
            r"\\?[\"']?\s*(?:[:=]|=>)\s*" + _QUOTED_OR_BARE
        ),
    ),
)

# For each pattern above, in the same order: literals one of which every match of it contains,
# looked for in the lower-cased text. Most texts hold none of them and skip every scan; a text
# that does runs only the patterns whose literal it holds (a "key" in ordinary prose runs the
# credential pattern, not all fourteen; issue 15). Skipping a
# pattern cannot change the result: it has no match in the text, and the markers earlier
# patterns write in ("[REDACTED:api_key]") end in "]", which no credential name may be followed
# by. Substring tests, not one alternation regex: `re` tries every alternative at every
# position, which cost 2.4x more on a system prompt (20 vs 8.5 us for 640 characters). The
# scrubbing tests cover every pattern, so a pattern added without its literal here fails them.
_HINTS: Final[tuple[tuple[str, ...], ...]] = (
    ("private key",),
    ("sk-",),
    ("sk_", "pk_", "rk_"),
    ("akia", "asia"),
    ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ("xox",),
    ("aiza",),
    ("hf_",),
    ("eyj",),
    ("://",),
    ("authorization",),
    ("bearer",),
    ("basic",),
    ("key", "secret", "passw", "passphrase", "pwd", "token"),
)
_SCANS: Final = tuple(zip(_PATTERNS, _HINTS, strict=True))
_SECRET_HINTS: Final = tuple(hint for hints in _HINTS for hint in hints)

_MARKER: Final = "[REDACTED:{kind}]"


def _is_basic_credential(value: str) -> bool:
    """True when `value` is base64 of printable `user:password` (RFC 7617's form)."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    _user, colon, password = decoded.partition(":")
    return bool(colon and password) and decoded.isprintable()


# A kind whose matches are secrets only when their value passes a check as well.
_CONFIRM: Final[dict[str, Callable[[str], bool]]] = {"basic_credentials": _is_basic_credential}


@dataclass(frozen=True, slots=True)
class Scrubbed:
    text: str
    secrets_removed: int


def scrub(text: str) -> Scrubbed:
    """`text` with every secret replaced by a marker, and how many were replaced."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS):
        return Scrubbed(text=text, secrets_removed=0)
    return scrub_with(text, [p for p, hints in _SCANS if any(h in lowered for h in hints)])


def scrub_with(text: str, patterns: Iterable[tuple[str, re.Pattern[str]]]) -> Scrubbed:
    """`text` scrubbed by `patterns` (in `_PATTERNS` order); the tests compare `scrub`'s
    selection against all of them."""
    removed = 0
    for kind, pattern in patterns:
        marker = _MARKER.format(kind=kind)
        confirm = _CONFIRM.get(kind)

        def replace(
            match: re.Match[str],
            marker: str = marker,
            confirm: Callable[[str], bool] | None = confirm,
        ) -> str:
            nonlocal removed
            group = next((name for name, v in match.groupdict().items() if v is not None), None)
            whole = match.group(0)
            value = whole if group is None else match.group(group)
            if value.startswith("[REDACTED:"):
                return whole  # an earlier, more specific pattern got it already
            if confirm is not None and not confirm(value):
                return whole
            removed += 1
            if group is None:
                return marker
            start, end = match.start(group) - match.start(), match.end(group) - match.start()
            return whole[:start] + marker + whole[end:]

        text = pattern.sub(replace, text)
    return Scrubbed(text=text, secrets_removed=removed)


def scrub_text(text: str) -> str:
    """Just the scrubbed text (for detail fields that carry no count)."""
    return scrub(text).text


def mask_values(text: str, values: Iterable[str], kind: str) -> str:
    """`text` with every occurrence of each of `values` replaced by the marker of `kind`: a
    secret the service was configured with, in a shape no pattern may know (a provider's key, an
    MCP server's header). Run it before `scrub`, which could replace only a part of such a value
    and leave the rest. Longest first, so a value that holds another goes whole."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, _MARKER.format(kind=kind))
    return text
