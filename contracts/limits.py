"""Size limits every message is validated against.

They keep partitions flowing (no multi-megabyte records), keep session documents bounded, and
give upstream publishers numbers they can check before they publish. Changing a limit is a
contract change: say so in contracts/README.md.
"""

from typing import Final

MAX_ID_LENGTH: Final = 128
"""Session, tenant, command, message, turn and invocation ids."""

MAX_AGENT_NAME_LENGTH: Final = 64
"""An agent named in an external command (`session.switch_agent.v1`)."""
MAX_TITLE_LENGTH: Final = 200
MAX_DESCRIPTION_LENGTH: Final = 2_000
MAX_SYSTEM_PROMPT_LENGTH: Final = 16_000
MAX_CONTENT_LENGTH: Final = 32_000
"""A single user or assistant message, in characters."""

MAX_REASON_LENGTH: Final = 1_000
MAX_AUTHOR_NAME_LENGTH: Final = 100
MAX_METADATA_ENTRIES: Final = 32
MAX_METADATA_KEY_LENGTH: Final = 64
MAX_METADATA_VALUE_LENGTH: Final = 512
MAX_CONTEXT_MESSAGES: Final = 200
"""Messages carried in one context window (TurnStarted, AgentSwitched, LLMRequested)."""

MAX_TOOL_CALLS: Final = 16
MAX_TOOL_ARGUMENTS_LENGTH: Final = 16_000
MAX_TOOL_ARGUMENTS_DEPTH: Final = 64
"""Levels of nesting in a tool call's arguments (the object itself is one). The records that
carry them as JSON (`tool.call_requested.v1`) must decode: pydantic-core parses 200 levels, so
arguments 250 deep were published and dead-lettered by every consumer, 600 deep exhausted
session-commands' recursion (RecursionError: the turn's RequestToolCalls dead-lettered)."""
MAX_DELTA_LENGTH: Final = 4_000

MAX_MESSAGE_BYTES: Final = 1_000_000
"""Encoded value of one Kafka record. Kafka's own default max.message.bytes is 1 MiB."""

MAX_DEAD_LETTER_HEADER_BYTES: Final = 4_096
"""A header value of a dead-lettered record kept beyond this is cut to it, when the whole dead
letter would not fit in MAX_MESSAGE_BYTES (a poison record with a ~1 MB header)."""
MAX_DEAD_LETTER_HEADER_NAME: Final = 256

MAX_AGENT_SWITCHES: Final = 10
"""Agent switches per session (user and orchestration alike); the 11th is refused with
`switch_limit_reached`. Orchestration stops offering `switch_agent` at the cap."""

MAX_TOOL_RESULT_LENGTH: Final = 16_000
"""The content of one tool result (SubmitToolResult, RecordToolResult), in characters. With
MAX_TOOL_CALLS_PER_TURN calls and their arguments a turn's tool exchange stays well below
MAX_MESSAGE_BYTES, because every later step of the turn carries it in its prompt."""
MAX_TOOL_CALLS_PER_TURN: Final = 50
"""The most tool calls one turn may ever make: the ceiling of orchestration's setting
`max_tool_calls_per_turn` (default DEFAULT_TOOL_CALLS_PER_TURN)."""
DEFAULT_TOOL_CALLS_PER_TURN: Final = 20
MAX_LLM_REQUEST_MESSAGES: Final = MAX_CONTEXT_MESSAGES + 2 + 2 * MAX_TOOL_CALLS_PER_TURN
"""Messages in one `llm.requested.v1`: the window, two system prompts, and per tool call of the
turn an assistant and a tool message at most."""
MAX_TOOL_EXCHANGE_BYTES: Final = 600_000
"""A turn's tool calls and results (arguments, results, the model's text beside its calls) as
the JSON strings that carry them (UTF-8 with the escapes: a control character takes 6 bytes),
which every later step of the turn carries: beyond it the turn fails
(`tool_results_too_large`) rather than publish a record over MAX_MESSAGE_BYTES. With the context
window (escaped text: up to ~390 kB) the record can still exceed it: the turn fails then too
(session-commands checks the record itself)."""
MAX_RUNS_ON_LENGTH: Final = 100
"""`client` or `mcp:<server>`."""
