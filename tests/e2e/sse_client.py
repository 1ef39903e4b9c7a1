"""A small Server-Sent Events reader over httpx for the stream tests (the format's rules:
`field: value` lines, a blank line ends an event, `:` lines are comments)."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: dict[str, Any]
    id: str | None


async def sse_events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    event, data, last_id = "message", "", None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SseEvent(event, json.loads(data), last_id)
            event, data = "message", ""
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data += value
            elif name == "id":
                last_id = value
