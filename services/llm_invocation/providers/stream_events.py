"""What a provider yields while it streams: text, tool-call fragments, and the end.

Every provider speaks this small vocabulary, whatever its wire protocol, so the invoker and the
handler never see HTTP, SSE or JSON.
"""

from dataclasses import dataclass

from contracts.llm import FinishReason, Usage


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
