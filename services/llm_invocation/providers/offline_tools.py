"""How the offline provider calls tools: pure, deterministic, no I/O.

On an agent offered the tool, a user message asks for it in plain words:

- "read file X" (several: "read file a.py and b.py", "read files a.py, b.py") → `read_file`
  with `{"path": X}`, one call per file, all in one answer (parallel calls);
- "list directory X" / "list the folder X" (X defaults to ".") → `list_directory`;
- "write file X with TEXT" / "create file X containing TEXT" → `write_file` (`needs_approval`
  in the default catalogue, so the approval flow is demoable offline).

Once the results are back (the prompt ends with `tool` messages) it answers from them and
never calls again, so a turn has at most one round of offline tool calls.
"""

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from contracts.agents import MessageRole
from contracts.limits import MAX_TOOL_ARGUMENTS_LENGTH, MAX_TOOL_CALLS
from contracts.llm import ChatMessage, ToolDefinition

READ_FILE: Final = "read_file"
LIST_DIRECTORY: Final = "list_directory"
WRITE_FILE: Final = "write_file"
_EXCERPT_CHARS: Final = 200

_NEXT_REQUEST = r"\s+(?:and\s+)?(?:then|list|read|write|create)\b"
_READ = re.compile(
    r"\bread (?:the )?files?\s+(?P<paths>.+?)(?=" + _NEXT_REQUEST + r"|[;!?]|$)", re.I | re.S
)
_LIST = re.compile(
    r"\blist (?:the )?(?:directory|dir|folder)\b(?:\s+(?P<path>(?!and\b)[^\s,;!?]+))?", re.I
)
_WRITE = re.compile(
    r"\b(?:write|create) (?:a |the )?(?:new )?file\s+(?P<path>[^\s,;!?]+)"
    r"(?:\s+(?:with|containing)\s+(?P<content>.+))?",
    re.I | re.S,
)
_PATH = re.compile(r"[\w./~@+-]+")
_DEFAULT_CONTENT: Final = "Written by the offline provider.\n"


@dataclass(frozen=True, slots=True)
class PlannedCall:
    name: str
    arguments: str


def planned_calls(text: str | None, tools: Sequence[ToolDefinition]) -> list[PlannedCall]:
    """The tool calls the user's words ask for, among the offered tools; [] for none."""
    if not text:
        return []
    offered = {tool.name for tool in tools}
    calls: list[PlannedCall] = []
    if WRITE_FILE in offered:
        for match in _WRITE.finditer(text):
            content = (match.group("content") or "").strip() or _DEFAULT_CONTENT
            calls.append(_call(WRITE_FILE, path=_clean(match.group("path")), content=content))
        if calls:
            return calls  # the rest of the message is the file's text, not more requests
    if READ_FILE in offered:
        for match in _READ.finditer(text):
            for path in _PATH.findall(match.group("paths")):
                if path.lower() not in {"and", "the", "file", "files"}:
                    calls.append(_call(READ_FILE, path=_clean(path)))
    if LIST_DIRECTORY in offered:
        for match in _LIST.finditer(text):
            calls.append(_call(LIST_DIRECTORY, path=_clean(match.group("path") or ".")))
    return calls[:MAX_TOOL_CALLS]


def answers_tool_results(messages: Sequence[ChatMessage]) -> bool:
    return bool(messages) and messages[-1].role is MessageRole.TOOL


def answer_from_results(messages: Sequence[ChatMessage]) -> str:
    """An answer built from the last round's tool messages, each with the call it answers."""
    results: list[ChatMessage] = []
    for message in reversed(messages):
        if message.role is not MessageRole.TOOL:
            break
        results.append(message)
    results.reverse()
    calls = {call.id: call for m in messages for call in m.tool_calls}
    lines = [
        "[offline provider] I called tools for you (no language model was called); "
        "here is what they returned:"
    ]
    for result in results:
        call = calls.get(result.tool_call_id or "")
        what = f"{call.name} {call.arguments}" if call is not None else "a tool"
        excerpt = " ".join(result.content.split())
        if len(excerpt) > _EXCERPT_CHARS:
            excerpt = excerpt[: _EXCERPT_CHARS - 1] + "…"
        lines.append(f"- {what}: {excerpt or '(empty)'}")
    return "\n".join(lines)


def _call(name: str, **arguments: str) -> PlannedCall:
    # Within the contract's bound on a call's arguments: a longer call is a bad response
    # (completion.py), which would fail the turn and count against the circuit of every
    # session, for a user who only pasted a long text. The longest value is cut until it fits.
    encoded = json.dumps(arguments, ensure_ascii=False)
    while len(encoded) > MAX_TOOL_ARGUMENTS_LENGTH:
        longest = max(arguments, key=lambda key: len(arguments[key]))
        excess = len(encoded) - MAX_TOOL_ARGUMENTS_LENGTH
        arguments[longest] = arguments[longest][: max(0, len(arguments[longest]) - excess)]
        encoded = json.dumps(arguments, ensure_ascii=False)
    return PlannedCall(name=name, arguments=encoded)


def _clean(path: str) -> str:
    return path.rstrip(".,:;") or "."
