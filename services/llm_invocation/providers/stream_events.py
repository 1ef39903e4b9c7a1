"""What a provider yields while it streams: text, tool-call fragments, and the end.

Every provider speaks this small vocabulary, whatever its wire protocol, so the invoker and the
handler never see HTTP, SSE or JSON.
"""

import re
from dataclasses import dataclass

from contracts.llm import FinishReason, Usage

_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD.

    JSON may escape one (`"\\ud83d"`: half an emoji, cut between two tokens by a server that
    streams per token), and a Python string holding it cannot be encoded as UTF-8, so no
    record carrying it validates: the request would end in a dead letter without any result,
    its turn never ending. A pair within one string stays the character it encodes."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """One fragment of a tool call, as OpenAI streams them: the first fragment of call `index`
    carries its id and name; later fragments append to its JSON arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class StreamFinished:
    finish_reason: FinishReason
    usage: Usage | None = None


StreamEvent = TextDelta | ToolCallDelta | StreamFinished
