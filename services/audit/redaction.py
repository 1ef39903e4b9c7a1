"""The content redaction policy: full, truncated to N characters, or sha256 + length.

Secrets are scrubbed first, in every mode, so the policy only decides how much of the
(already safe) text a pipeline gets. The hash is over the scrubbed text's UTF-8 bytes: the
same message content hashes the same in every fact that carries it (UserMessageAccepted,
the LLMRequested that sends it to the model), so pipelines can follow content without
seeing it.
"""

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from contracts.audit import ContentPart, RedactedContent, RedactionMode
from services.runtime.secret_scrubbing import scrub

_REMEMBERED_TEXTS: Final = 1_024
_REMEMBERED_MAX_CHARS: Final = 4_096
"""The same texts come back fact after fact (an answer is the content of llm.completed,
turn.complete and the appended message, then a part of the next llm.requested; a system
prompt is in every request): their redactions are kept, up to ~8 MB of text, so each is
scrubbed and hashed once. The results are immutable models; the texts stay in this
process's memory, where they are anyway while being audited."""


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    mode: RedactionMode = RedactionMode.HASHED
    truncate_chars: int = 200
    # Even "full" is bounded: an audit record must stay publishable (contracts.limits), and one
    # LLM request can carry hundreds of messages. Longer text is cut and the mode says so.
    full_max_chars: int = 32_000

    def __post_init__(self) -> None:
        if self.truncate_chars < 0 or self.full_max_chars < 1:
            raise ValueError("truncate_chars must be >= 0 and full_max_chars >= 1")

    def redact(self, text: str) -> RedactedContent:
        if len(text) <= _REMEMBERED_MAX_CHARS:
            return _remembered(self, text)
        return self._redact(text)

    def _redact(self, text: str) -> RedactedContent:
        scrubbed = scrub(text)
        safe = scrubbed.text
        digest = hashlib.sha256(safe.encode("utf-8", errors="surrogatepass")).hexdigest()
        mode = self.mode
        shown: str | None
        if mode is RedactionMode.HASHED:
            shown = None
        elif mode is RedactionMode.TRUNCATED:
            shown = safe[: self.truncate_chars]
        elif len(safe) > self.full_max_chars:
            mode, shown = RedactionMode.TRUNCATED, safe[: self.full_max_chars]
        else:
            shown = safe
        return RedactedContent(
            mode=mode,
            length=len(safe),
            text=shown,
            sha256=digest,
            secrets_removed=scrubbed.secrets_removed,
        )

    def part(self, name: str, text: str, label: str | None = None) -> ContentPart:
        return ContentPart(name=name, label=label, content=self.redact(text))


@lru_cache(maxsize=_REMEMBERED_TEXTS)
def _remembered(policy: RedactionPolicy, text: str) -> RedactedContent:
    return policy._redact(text)
