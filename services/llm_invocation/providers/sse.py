"""Server-sent events decoding (the WHATWG event-stream format), line by line.

httpx splits the body into lines; this turns lines into events. Kept apart from the provider
so it is tested without a network. Unknown fields are ignored, as the format requires; a
stream that is garbage therefore yields no events and the provider reports that it ended
without finishing.
"""

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._first = True

    def feed(self, line: str) -> Iterator[ServerSentEvent]:
        """Feed one line (without its end-of-line); yields an event when a blank line ends one."""
        if self._first:
            # The format ignores one byte order mark at the start of the stream; kept, it made
            # the first line's field "\ufeffdata", an unknown field: the first chunk was lost.
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            event = self._dispatch()
            if event is not None:
                yield event
            return
        if line.startswith(":"):
            return  # comment, e.g. the ": keep-alive" some proxies send
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value

    def close(self) -> Iterator[ServerSentEvent]:
        """End of stream: an event without its trailing blank line is still delivered."""
        event = self._dispatch()
        if event is not None:
            yield event

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data), event=self._event or "message", id=self._id
        )
        self._data = []
        self._event = ""
        return event
