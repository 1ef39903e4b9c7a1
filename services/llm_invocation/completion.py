"""Folds a provider's stream events into one completion, enforcing the contract's limits.

The limits are those of LLMCompleted: content beyond MAX_CONTENT_LENGTH is cut and the finish
reason becomes `length` (the caller stops the stream, so we stop paying for it); tool calls
beyond the contract's bounds are a bad response.
"""

import re
from dataclasses import dataclass, field

from contracts.limits import MAX_CONTENT_LENGTH, MAX_TOOL_ARGUMENTS_LENGTH, MAX_TOOL_CALLS
from contracts.llm import FinishReason, ToolCall, Usage
from services.llm_invocation.providers.provider_errors import BadResponse
from services.llm_invocation.providers.stream_events import (
    StreamEvent,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: FinishReason


@dataclass(slots=True)
class _PartialToolCall:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)
    length: int = 0


class CompletionBuilder:
    def __init__(self, *, max_content_length: int = MAX_CONTENT_LENGTH) -> None:
        self._max_content = max_content_length
        self._content: list[str] = []
        self._content_length = 0
        self._tool_calls: dict[int, _PartialToolCall] = {}
        self._finished: StreamFinished | None = None
        self.truncated = False

    def add(self, event: StreamEvent) -> str:
        """Fold one event; returns the text to stream to clients (empty when none)."""
        if isinstance(event, TextDelta):
            return self._add_text(event.text)
        if isinstance(event, ToolCallDelta):
            self._add_tool_fragment(event)
            return ""
        self._finished = event
        return ""

    @property
    def finished(self) -> bool:
        return self._finished is not None or self.truncated

    def build(self, *, prompt_tokens_estimate: int = 0) -> Completion:
        if self._finished is None and not self.truncated:
            raise BadResponse("the stream ended without a finish reason")
        content = "".join(self._content)
        tool_calls = self._tool_call_list()
        if self.truncated:
            reason = FinishReason.LENGTH
        else:
            assert self._finished is not None
            reason = self._finished.finish_reason
            if tool_calls and reason is FinishReason.STOP:
                reason = FinishReason.TOOL_CALLS  # some servers say "stop" after tool calls
        usage = self._finished.usage if self._finished and self._finished.usage else None
        return Completion(
            content=content,
            tool_calls=tool_calls,
            usage=usage or _estimated_usage(prompt_tokens_estimate, content),
            finish_reason=reason,
        )

    def _add_text(self, text: str) -> str:
        room = self._max_content - self._content_length
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self._content.append(text)
        self._content_length += len(text)
        return text

    def _add_tool_fragment(self, fragment: ToolCallDelta) -> None:
        call = self._tool_calls.get(fragment.index)
        if call is None:
            if len(self._tool_calls) >= MAX_TOOL_CALLS:
                raise BadResponse(f"more than {MAX_TOOL_CALLS} tool calls")
            call = self._tool_calls[fragment.index] = _PartialToolCall()
        if fragment.id:
            call.id = fragment.id
        if fragment.name and not call.name:
            call.name = fragment.name  # sent once, with the call's first fragment
        call.arguments.append(fragment.arguments)
        call.length += len(fragment.arguments)
        if call.length > MAX_TOOL_ARGUMENTS_LENGTH:
            raise BadResponse(f"tool call arguments longer than {MAX_TOOL_ARGUMENTS_LENGTH}")

    def _tool_call_list(self) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(self._tool_calls):
            partial = self._tool_calls[index]
            if not partial.name or not _TOOL_NAME.fullmatch(partial.name):
                raise BadResponse(f"tool call {index} has no valid function name")
            calls.append(
                ToolCall(
                    id=(partial.id or f"call_{index}")[:128],
                    name=partial.name,
                    arguments="".join(partial.arguments),
                )
            )
        return calls


def _estimated_usage(prompt_tokens: int, content: str) -> Usage:
    """Servers that send no usage still get a rough count (≈4 characters per token), so that
    the token-rate limiter and the metrics see something rather than zero."""
    completion_tokens = (len(content) + 3) // 4
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
