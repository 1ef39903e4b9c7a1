"""The offline provider: deterministic, no network, the default when none is configured.

It behaves like a model at the protocol level (small streamed deltas, tool calls as
fragments, usage, a finish reason), so the whole pipeline, hand-offs included, runs and is
tested without a paid model. Same request in, same stream out.
"""

import asyncio
import hashlib
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Final

from contracts.agents import AgentType
from contracts.llm import FinishReason, LLMRequested, Usage
from services.llm_invocation.providers.offline_routing import (
    SWITCH_AGENT_TOOL,
    handoff_targets,
    last_user_text,
    route,
)
from services.llm_invocation.providers.offline_tools import (
    answer_from_results,
    answers_tool_results,
    planned_calls,
)
from services.llm_invocation.providers.stream_events import (
    StreamEvent,
    StreamFinished,
    TextDelta,
    ToolCallDelta,
)

OFFLINE_MODEL: Final = "offline-deterministic-1"
_CHUNK_CHARS: Final = 16
_EXCERPT_CHARS: Final = 120

_ROLE: Final[Mapping[AgentType, str]] = {
    AgentType.ORCHESTRATOR: "As the orchestrator I route requests to the specialist agents; "
    "this one needs no specialist, so here is a short answer to",
    AgentType.CODER: "As the coder agent I would write, test and refactor the code for",
    AgentType.ARCHITECT: "As the architect agent I would weigh the components, scaling "
    "and trade-offs of",
    AgentType.DEBUG: "As the debug agent I would reproduce the failure, read the traceback "
    "and find the root cause of",
    AgentType.ASK: "As the ask agent I would answer plainly and briefly",
}


class OfflineProvider:
    def __init__(self, *, chunk_delay_s: float = 0.0) -> None:
        self._chunk_delay_s = chunk_delay_s

    @property
    def name(self) -> str:
        return "offline"

    def model_for(self, request: LLMRequested) -> str:
        return OFFLINE_MODEL  # an agent's model override names a real model; none runs here

    async def stream(self, request: LLMRequested) -> AsyncGenerator[StreamEvent, None]:
        text = last_user_text(request.messages)
        prompt_tokens = _tokens(sum(len(m.content) for m in request.messages))
        if answers_tool_results(request.messages):
            async for event in self._answer(answer_from_results(request.messages), prompt_tokens):
                yield event
            return
        handoff = route(request.agent, handoff_targets(request.tools), text)
        calls = planned_calls(text, request.tools) if handoff is None else []
        if calls:
            for index, call in enumerate(calls):
                call_id = (
                    "call_"
                    + hashlib.sha256(f"{request.invocation_id}/{index}".encode()).hexdigest()[:24]
                )
                yield ToolCallDelta(index=index, id=call_id, name=call.name, arguments="")
                await self._pause()
                yield ToolCallDelta(index=index, arguments=call.arguments)
            size = sum(len(call.arguments) for call in calls)
            yield StreamFinished(FinishReason.TOOL_CALLS, _usage(prompt_tokens, size))
            return
        if handoff is not None:
            arguments = json.dumps({"target": handoff.target.value, "reason": handoff.reason})
            middle = len(arguments) // 2
            call_id = "call_" + hashlib.sha256(request.invocation_id.encode()).hexdigest()[:24]
            yield ToolCallDelta(
                index=0, id=call_id, name=SWITCH_AGENT_TOOL, arguments=arguments[:middle]
            )
            await self._pause()
            yield ToolCallDelta(index=0, arguments=arguments[middle:])
            yield StreamFinished(FinishReason.TOOL_CALLS, _usage(prompt_tokens, len(arguments)))
            return
        async for event in self._answer(offline_answer(request.agent, text), prompt_tokens):
            yield event

    async def _answer(self, answer: str, prompt_tokens: int) -> AsyncGenerator[StreamEvent, None]:
        for chunk in text_chunks(answer):
            await self._pause()
            yield TextDelta(chunk)
        yield StreamFinished(FinishReason.STOP, _usage(prompt_tokens, len(answer)))

    async def aclose(self) -> None:
        return None

    async def _pause(self) -> None:
        # Even without a delay, yield to the loop: a real stream never arrives all at once.
        await asyncio.sleep(self._chunk_delay_s)


def offline_answer(agent: AgentType, text: str | None) -> str:
    excerpt = " ".join((text or "").split())
    if len(excerpt) > _EXCERPT_CHARS:
        excerpt = excerpt[: _EXCERPT_CHARS - 1] + "…"
    subject = f": “{excerpt}”." if excerpt else "."
    return (
        "[offline provider] This answer comes from the offline provider, a deterministic "
        "stand-in: no language model was called. "
        f"{_ROLE[agent]}{subject} "
        "Set LLM_BASE_URL, LLM_API_KEY and LLM_MODEL to talk to a real model."
    )


def text_chunks(text: str) -> list[str]:
    """Word-aligned pieces of about _CHUNK_CHARS characters; joined, they give back `text`."""
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        piece = word if not current else " " + word
        if current and len(current) + len(piece) > _CHUNK_CHARS:
            chunks.append(current)
            piece = " " + word
            current = ""
        current += piece
    if current:
        chunks.append(current)
    return chunks


def _tokens(characters: int) -> int:
    return (characters + 3) // 4


def _usage(prompt_tokens: int, completion_chars: int) -> Usage:
    completion = _tokens(completion_chars)
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
    )
