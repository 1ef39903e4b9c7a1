"""Text from outside (a model's answer, its tool-call arguments) made fit for a record."""

import re

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
