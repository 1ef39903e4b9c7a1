"""The resume point of a live stream: Kafka positions of the session's partition.

`session-events` and `llm-stream` are keyed by session id and co-partitioned (one partition
count), so one partition number names where a session lives in both. A cursor is the next
offset to read in each: `v1.<partition>.<session-events offset>.<llm-stream offset>`. Every SSE
event carries the cursor *after* it, so `Last-Event-ID` resumes exactly past the last event the
client saw; other sessions' records in between are skipped again on replay, never sent.
"""

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

# [0-9], not \d: in Python \d matches every script's digits (and int() reads them), so an id
# with Arabic-Indic digits would name a partition; the published pattern is ASCII only.
_PATTERN: Final = re.compile(r"^v1\.([0-9]{1,5})\.([0-9]{1,19})\.([0-9]{1,19})$")


class StreamTopic(StrEnum):
    SESSION_EVENTS = "session-events"
    LLM_STREAM = "llm-stream"


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cursor:
    partition: int
    session_events: int
    llm_stream: int

    def __str__(self) -> str:
        return f"v1.{self.partition}.{self.session_events}.{self.llm_stream}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        found = _PATTERN.match(text.strip())
        if found is None:
            raise InvalidCursor("not a stream event id (v1.<partition>.<offset>.<offset>)")
        partition, events, stream = (int(part) for part in found.groups())
        return cls(partition, events, stream)

    def next_offset(self, topic: StreamTopic) -> int:
        return self.session_events if topic is StreamTopic.SESSION_EVENTS else self.llm_stream

    def past(self, topic: StreamTopic, offset: int) -> "Cursor":
        """The cursor after the record at `offset` of `topic`."""
        if topic is StreamTopic.SESSION_EVENTS:
            return replace(self, session_events=offset + 1)
        return replace(self, llm_stream=offset + 1)
