"""ToolCallHandler's order of effects, with in-memory claims and results: a call whose turn
ends while it is being claimed is not run."""

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest

from contracts.codec import EncodedRecord, encode
from contracts.registry import type_name
from contracts.session_events import ToolCallRequested
from contracts.topics import Service
from contracts.turns import RecordToolResult
from services.runtime import Record
from services.runtime.kept_results import Holder
from services.tool_invocation.handler import ToolCallHandler
from services.tool_invocation.result_store import KeptToolResults, ToolCallClaims
from services.tool_invocation.tool_caller import ToolCaller, ToolOutcome
from tests.support.mcp.tool_calls import tool_call

pytestmark = pytest.mark.unit


class CountingCaller:
    max_content_chars = 16_000

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def call(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        idempotent: bool,
        deadline_s: float,
    ) -> ToolOutcome:
        self.calls.append(tool)
        return ToolOutcome("ran", False)


class MemoryStore:
    """A ClaimStore and the kept results in one; `on_claim` runs as a claim is written."""

    def __init__(self, on_claim: Any) -> None:
        self.holders: dict[str, Holder] = {}
        self.kept: dict[str, RecordToolResult] = {}
        self._on_claim = on_claim

    async def claim(self, invocation_id: str, session_id: str, owner: str) -> Holder:
        self._on_claim()
        return self.holders.setdefault(invocation_id, Holder(owner))

    async def read_claim(self, invocation_id: str) -> RecordToolResult | Holder | None:
        return self.kept.get(invocation_id) or self.holders.get(invocation_id)

    async def take_over(self, invocation_id: str, owner: str, seen: Holder | None) -> bool:
        return False

    async def renew(self, invocation_id: str, owner: str) -> bool:
        return True

    async def release(self, invocation_id: str, owner: str) -> None:
        self.holders.pop(invocation_id, None)

    async def keep(self, result: RecordToolResult) -> RecordToolResult:
        self.kept[result.tool_call_id] = result
        return result


def as_record(request: ToolCallRequested) -> Record:
    encoded = encode(request, source=Service.SESSION_COMMANDS.value)
    assert dict(encoded.headers)["ce_type"] == type_name(ToolCallRequested).encode()
    return Record("session-events", 0, 0, encoded.key, encoded.value, tuple(encoded.headers))


async def test_a_call_whose_turn_ends_while_it_is_claimed_is_not_run() -> None:
    request = tool_call("session-1", "echo", {"text": "x"})
    published: list[tuple[str, EncodedRecord]] = []

    async def publish(topic: str, record: EncodedRecord) -> None:
        published.append((topic, record))

    caller = CountingCaller()
    handler: ToolCallHandler

    def turn_failed_meanwhile() -> None:  # what the session watch does on the TurnFailed
        handler.ended.add(request.turn_id, "turn failed: session_closed")

    store = MemoryStore(turn_failed_meanwhile)
    handler = ToolCallHandler(
        caller=cast(ToolCaller, caller),
        results=cast(KeptToolResults, store),
        claims=ToolCallClaims(store),
        publish=publish,
        turns_topic="turns",
    )
    await handler(as_record(request))

    assert caller.calls == []
    assert published == []  # the turn takes no result any more
    kept = store.kept[request.tool_call_id]
    assert (kept.is_error, kept.content) == (
        True,
        "cancelled: stopped: turn failed: session_closed",
    )


class RejectingCaller(CountingCaller):
    """A server that answers with a JSON-RPC error whose message is longer than a result."""

    async def call(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        idempotent: bool,
        deadline_s: float,
    ) -> ToolOutcome:
        return ToolOutcome(f"tool {tool}: " + "r" * 20_000, True, "rejected")


async def test_a_failure_longer_than_a_result_is_cut_and_marked() -> None:
    """docs/tool-invocation.md: longer content is cut and marked `[truncated by
    tool-invocation]`; a failure's message was cut silently (the model could not tell)."""
    request = tool_call("session-1", "refuse", {})
    store = MemoryStore(lambda: None)
    handler = ToolCallHandler(
        caller=cast(ToolCaller, RejectingCaller()),
        results=cast(KeptToolResults, store),
        claims=ToolCallClaims(store),
        publish=lambda _topic, _record: asyncio.sleep(0),
        turns_topic="turns",
    )
    await handler(as_record(request))
    kept = store.kept[request.tool_call_id]
    assert kept.content.startswith("rejected: tool refuse: rrr")
    assert kept.content.endswith("\n[truncated by tool-invocation]")
    assert len(kept.content) == 16_000
